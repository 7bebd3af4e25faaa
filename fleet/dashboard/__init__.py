"""Server-rendered dashboard: pages, sign-in and live updates."""

from fastapi import APIRouter

from fleet.dashboard import (
    audit_page,
    auth,
    case_pages,
    device_control,
    live,
    ota,
    pages,
    register,
    registry,
    rejects,
    risk,
    tokens,
)

router = APIRouter(include_in_schema=False)
router.include_router(auth.router)
router.include_router(pages.router)
router.include_router(device_control.router)
router.include_router(live.router)
router.include_router(register.router)
router.include_router(registry.router)
router.include_router(risk.router)
router.include_router(case_pages.router)
router.include_router(ota.router)
router.include_router(rejects.router)
router.include_router(tokens.router)
router.include_router(audit_page.router)
