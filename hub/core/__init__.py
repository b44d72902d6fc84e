"""The core: the model, the fold, the commands and the hub that runs them."""
