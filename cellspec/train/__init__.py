"""The numpy trainer: readout, optimizers, the training loop."""
