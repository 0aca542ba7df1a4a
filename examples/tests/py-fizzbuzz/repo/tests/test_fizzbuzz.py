import unittest

from fizzbuzz import fizzbuzz, sequence


class FizzBuzzTest(unittest.TestCase):
    def test_plain_numbers(self):
        self.assertEqual(fizzbuzz(1), "1")
        self.assertEqual(fizzbuzz(7), "7")

    def test_fizz_and_buzz(self):
        self.assertEqual(fizzbuzz(9), "Fizz")
        self.assertEqual(fizzbuzz(10), "Buzz")

    def test_fizzbuzz(self):
        self.assertEqual(fizzbuzz(15), "FizzBuzz")

    def test_sequence_includes_the_limit(self):
        self.assertEqual(sequence(5), ["1", "2", "Fizz", "4", "Buzz"])


if __name__ == "__main__":
    unittest.main()
