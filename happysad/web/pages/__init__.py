"""Server-rendered pages: the jobs, a job, the models, and the login form."""

from fastapi import APIRouter

from happysad.web.pages import auth, jobs, models, reviews

pages_router = APIRouter(include_in_schema=False)
for module in (auth, jobs, models, reviews):
    pages_router.include_router(module.router)
