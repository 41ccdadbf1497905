"""Developer and operator tools: the local mongod launcher, the `run` supervisor, the VK sandbox."""
