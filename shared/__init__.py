"""The project's common kernel: settings, logging, MongoDB, messaging, VK client."""
