"""``python -m services.refresher``: run the refresher until SIGTERM/SIGINT."""

from services.refresher.service import SERVICE, lifespan
from shared.service import run_service

if __name__ == "__main__":
    run_service(SERVICE, lifespan)
