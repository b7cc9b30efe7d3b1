"""The comparison protocol: time split, strategies, learners, the runner and its results."""
