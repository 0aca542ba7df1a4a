"""FizzBuzz as a tiny library and command-line tool.

    python3 fizzbuzz.py 15     prints the FizzBuzz words for 1..15, one per line
"""

import sys


def fizzbuzz(n):
    """The FizzBuzz word for n: Fizz for multiples of 3, Buzz for 5, FizzBuzz for both."""
    if n % 3 == 0:
        return "Fizz"
    if n % 5 == 0:
        return "Buzz"
    return str(n)


def sequence(limit):
    """The FizzBuzz words for 1..limit, inclusive."""
    return [fizzbuzz(i) for i in range(1, limit)]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    limit = int(argv[0]) if argv else 15
    for word in sequence(limit):
        print(word)
    return 0


if __name__ == "__main__":
    sys.exit(main())
