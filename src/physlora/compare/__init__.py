"""Train and evaluate several adaptation methods on the same data and steps, and tabulate them."""
