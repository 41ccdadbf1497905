"""refresher: turns VK callback events into full refreshes of the cached walls."""
