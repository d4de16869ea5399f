"""Business rules over HTTP (admin key only, see guard.py): create, list, change, disable,
and a preview of one customer's and one region's list before and after them. The same as
`mgrecs rules`; every list the API serves obeys a change within `rules_refresh_seconds`."""

import dataclasses
import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from mgrecs.api.deps import PoolDep, serving
from mgrecs.api.discovery import discovery
from mgrecs.api.routes.regions import region_list
from mgrecs.api.schemas.regions import RegionItem
from mgrecs.api.schemas.rules import (
    Preview,
    PreviewItem,
    PreviewList,
    PreviewRequest,
    Rule,
    RuleFields,
    RuleList,
    RulePatch,
)
from mgrecs.api.schemas.shared import ErrorMessage
from mgrecs.common.api_keys import presented_key
from mgrecs.common.logging import get_logger
from mgrecs.engine.business_rules import BusinessRule, RuleBook
from mgrecs.store import rules as store

router = APIRouter(prefix="/v1/admin/rules", tags=["admin"])
log = get_logger(__name__)

ACTOR_HEADER = "X-Actor"
"""Who makes the change (a person's name or e-mail), recorded as created_by / updated_by;
without it, the admin key's fingerprint."""

Actor = Annotated[
    str | None,
    Header(
        alias=ACTOR_HEADER,
        max_length=255,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="who makes the change (recorded); default: the admin key's fingerprint",
    ),
]
DRAFT_ID = 2**62
"""The id a draft rule takes in a preview: after every stored rule."""
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorMessage, "description": "no such rule"}
}
INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorMessage, "description": "a field is invalid (named)"}
}


def _actor(request: Request, named: str | None) -> str:
    if named and named.strip():
        return named.strip()
    key = presented_key(request.headers) or b""
    return "key:" + hashlib.sha256(key).hexdigest()[:12]


def _answer(stored: store.StoredRule) -> Rule:
    f = stored.fields
    return Rule(
        rule_id=stored.rule_id,
        kind=f.kind,  # type: ignore[arg-type]
        name=f.name,
        region=f.region,
        target=dict(f.target),  # type: ignore[arg-type]
        factor=f.factor,
        slot=f.slot,
        share=f.share,
        starts_at=f.starts_at,
        ends_at=f.ends_at,
        enabled=f.enabled,
        created_by=stored.created_by,
        created_at=stored.created_at,
        updated_by=stored.updated_by,
        updated_at=stored.updated_at,
    )


async def _checked(pool: PoolDep, body: RuleFields) -> store.RuleFields:
    """The body as stored; 422 naming the field when it names products or categories the
    catalogue does not know."""
    if problem := await store.catalogue_problem(pool, body.target):
        raise HTTPException(status_code=422, detail=problem)
    return store.fields_of(body)


@router.post("", response_model=Rule, status_code=201, responses=INVALID)
async def create_rule(
    body: RuleFields, request: Request, pool: PoolDep, actor: Actor = None
) -> Rule:
    """Store a rule; it applies to every list served within `rules_refresh_seconds`."""
    stored = await store.create_rule(pool, await _checked(pool, body), _actor(request, actor))
    log.info("rule_created", rule_id=stored.rule_id, kind=body.kind, by=stored.created_by)
    return _answer(stored)


@router.get("", response_model=RuleList)
async def list_rules(
    pool: PoolDep,
    include_disabled: Annotated[bool, Query(description="disabled rules too")] = True,
) -> RuleList:
    """Every rule, oldest first."""
    return RuleList(rules=[_answer(r) for r in await store.rules(pool, include_disabled)])


@router.get("/{rule_id}", response_model=Rule, responses=NOT_FOUND)
async def get_rule(rule_id: int, pool: PoolDep) -> Rule:
    found = await store.rule(pool, rule_id) if 1 <= rule_id <= 2**62 else None
    if found is None:
        raise HTTPException(status_code=404, detail=f"no rule {rule_id}")
    return _answer(found)


@router.patch("/{rule_id}", response_model=Rule, responses={**NOT_FOUND, **INVALID})
async def update_rule(
    rule_id: int, body: RulePatch, request: Request, pool: PoolDep, actor: Actor = None
) -> Rule:
    """Change the given fields (the rule must stay valid as a whole)."""
    found = await store.rule(pool, rule_id) if 1 <= rule_id <= 2**62 else None
    if found is None:
        raise HTTPException(status_code=404, detail=f"no rule {rule_id}")
    merged = store.written_of(found.fields)
    merged.update(body.model_dump(exclude_unset=True))
    try:
        fields = RuleFields.model_validate(merged)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from exc
    stored = await store.update_rule(
        pool, rule_id, await _checked(pool, fields), _actor(request, actor)
    )
    if stored is None:
        raise HTTPException(status_code=404, detail=f"no rule {rule_id}")
    log.info("rule_updated", rule_id=rule_id, by=stored.updated_by)
    return _answer(stored)


@router.post("/{rule_id}/disable", response_model=Rule, responses=NOT_FOUND)
async def disable_rule(rule_id: int, request: Request, pool: PoolDep, actor: Actor = None) -> Rule:
    """Stop applying the rule (kept, with who disabled it and when; PATCH `enabled: true`
    applies it again)."""
    found = await store.rule(pool, rule_id) if 1 <= rule_id <= 2**62 else None
    if found is None:
        raise HTTPException(status_code=404, detail=f"no rule {rule_id}")
    fields = found.fields
    disabled = store.RuleFields(**{**fields.__dict__, "enabled": False})
    stored = await store.update_rule(pool, rule_id, disabled, _actor(request, actor))
    assert stored is not None
    log.info("rule_disabled", rule_id=rule_id, by=stored.updated_by)
    return _answer(stored)


@router.post(
    "/preview",
    response_model=Preview,
    responses={**INVALID, 404: {"model": ErrorMessage, "description": "unknown customer"}},
)
async def preview(body: PreviewRequest, request: Request) -> Preview:
    """A customer's list and a region's page before and after: without a draft `rule`, with
    no rules and with the rules in force; with one, with the rules in force and with the
    draft too (nothing is stored)."""
    found = serving(request)
    keeper = found.rules
    now = found.clock()
    rules = list(keeper.book.rules)
    if body.rule is None:
        before_book, after_book = RuleBook(), RuleBook(rules)
    else:
        if problem := await store.catalogue_problem(found.pool, body.rule.target):
            raise HTTPException(status_code=422, detail=problem)
        draft = await store.resolve(found.pool, DRAFT_ID, store.fields_of(body.rule))
        before_book = RuleBook(rules)
        after_book = RuleBook([*rules, BusinessRule(**dataclasses.asdict(draft))])
    answer = Preview()
    if body.customer is not None:
        region = None
        if any(r.region is not None for r in after_book.rules):
            customer = await found.repository.customer(body.customer)
            region = customer.region if customer else None
        lists = [
            await discovery(
                found,
                body.customer,
                body.limit,
                None,
                "preview",
                rules=book.applicable(region, now),
            )
            for book in (before_book, after_book)
        ]
        named = [await found.names.name_items(listed.items) for listed in lists]
        answer.customer = PreviewList(
            source=lists[1].source,
            before=[PreviewItem(**i.model_dump()) for i in named[0]],
            after=[PreviewItem(**i.model_dump()) for i in named[1]],
        )
    if body.region is not None:
        settings = found.settings
        size = min(settings.region_sample_size, settings.region_max_sample_size)
        pages = [
            await region_list(
                found.repository,
                request.app.state.region_samples,
                settings,
                now,
                body.region,
                "sample",
                size,
                body.limit,
                None,
                book.applicable(body.region, now),
            )
            for book in (before_book, after_book)
        ]
        answer.region = PreviewList(
            source=pages[1].source,
            before=[_region_item(i) for i in pages[0].items],
            after=[_region_item(i) for i in pages[1].items],
        )
    return answer


def _region_item(item: RegionItem) -> PreviewItem:
    return PreviewItem(product_id=item.product_id, score=item.match_rate / 100, reason=item.reason)
