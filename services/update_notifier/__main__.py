"""``python -m services.update_notifier``: run the update notifier until SIGTERM/SIGINT."""

from services.update_notifier.service import SERVICE, lifespan
from shared.service import run_service

if __name__ == "__main__":
    run_service(SERVICE, lifespan)
