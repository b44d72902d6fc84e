"""diemcau hub: one async server that coordinates every connection point of a hybrid meeting."""

__version__ = "0.1.0"
