"""The channel-independent core of delivery: caps per provider and health state shared by every process."""
