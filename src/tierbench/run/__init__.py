"""One run, as a pure function from its inputs to an output directory: workspace, agent, judges."""
