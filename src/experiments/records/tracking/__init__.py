"""The trackers: building the chosen loggers, checking them, and publishing to each through its outlet."""
