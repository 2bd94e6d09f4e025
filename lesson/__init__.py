"""The lesson on deep neural networks, run on the loan data: its NumPy losses and backpropagation,
and the experiments behind `loanrisk experiment` (docs/experiments.md). Not used by training or
serving."""
