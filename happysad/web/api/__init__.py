"""The HTTP API, version 1: one router per resource."""

from fastapi import APIRouter

from happysad.web.api import jobs, models, predictions, retrain, reviews

api_router = APIRouter()
for module in (jobs, predictions, reviews, models, retrain):
    api_router.include_router(module.router)
