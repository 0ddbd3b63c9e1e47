"""mocap: video to character animation from the command line."""

__version__ = "0.1.0"
