from services.post_tracker.service import lifespan
from shared.service import run_service

run_service("post_tracker", lifespan)
