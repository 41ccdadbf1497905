"""``python -m services.post_tracker``: run the post tracker until SIGTERM/SIGINT."""

from services.post_tracker.service import SERVICE, lifespan
from shared.service import run_service

if __name__ == "__main__":
    run_service(SERVICE, lifespan)
