"""HTTP: ``GET /items/{table}?<hash>=..&<range>=..`` from a Function URL or an HTTP API.

A batch: ``POST /items/{table}/batch`` with the JSON body ``{"keys": [{...},
...], "format": "plain"}`` (1 to 100 keys, each as in a direct invoke) answers
200 and ``{"items": [...]}`` in order (``reader.batch``); errors as below.

Both send payload format 2.0; Powertools' ``LambdaFunctionUrlResolver`` and
``APIGatewayHttpResolver`` route them (the latter strips an HTTP API stage
from the path). The routes are shared through one ``Router``.

Statuses: 200 found, 404 not found (same body as a direct invoke), 400 bad
key or an event missing ``method``, ``rawPath`` or ``stage``, 403 table not
allowed, 405 any other method (``TRACE`` and unknown ones too), 503 key schema
unreadable or disagreeing with KEY_SCHEMA, or DynamoDB unavailable, 500
anything unexpected (generic message, exception logged).
Bodies are JSON; no answer ever carries a stack trace (``debug=False``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    LambdaFunctionUrlResolver,
    Response,
)
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from reader import batch, observe, query, response
from reader.request import RequestError, check_format, check_table, key_from_query
from reader.runtime import runtime

JSON = "application/json"
ROUTE = "/items/<table>"
OTHER_METHODS = ["POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

router = APIGatewayHttpRouter()


@router.get(ROUTE)
def get_item(table: str) -> Response[str]:
    rt = runtime()
    table = check_table(table, rt.settings.allowed_tables)
    schema = rt.schema_of(table)
    key, fmt = key_from_query(query_params(router.current_event.raw_event), schema)
    started = time.perf_counter()
    result = rt.read(table, schema, key)
    observe.record(table, result, started)
    body = response.answer(result, fmt)
    return _json(response.status_of(body), body)


@router.route(ROUTE, method=OTHER_METHODS)
def other_method(table: str) -> Response[str]:
    return _json(405, response.error(405, "only GET is supported"), {"Allow": "GET"})


BATCH_ROUTE = "/items/<table>/batch"


@router.post(BATCH_ROUTE)
def get_items(table: str) -> Response[str]:
    rt = runtime()
    table = check_table(table, rt.settings.allowed_tables)
    event = router.current_event
    raw_keys, fmt = batch.from_http_body(event.body, bool(event.is_base64_encoded))
    return _json(200, batch.serve(rt, table, raw_keys, fmt))


@router.route(BATCH_ROUTE, method=["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def other_batch_method(table: str) -> Response[str]:
    return _json(405, response.error(405, "a batch is read with POST"), {"Allow": "POST"})


QUERY_ROUTE = "/items/<table>/query"


@router.get(QUERY_ROUTE)
def query_items(table: str) -> Response[str]:
    rt = runtime()
    table = check_table(table, rt.settings.allowed_tables)
    reads = rt.queries(table)
    spec, fmt = query.spec_from_http(query_params(router.current_event.raw_event), reads)
    return _json(200, query.serve(reads, spec, check_format(fmt)))


@router.route(QUERY_ROUTE, method=OTHER_METHODS)
def other_query_method(table: str) -> Response[str]:
    return _json(405, response.error(405, "a query is read with GET"), {"Allow": "GET"})


def query_params(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every query parameter as sent, in order.

    From ``rawQueryString``, because ``queryStringParameters`` joins repeated
    parameters with commas, which a string key value may contain itself.
    """
    raw = event.get("rawQueryString")
    if isinstance(raw, str):
        return parse_qsl(raw, keep_blank_values=True)
    return list((event.get("queryStringParameters") or {}).items())


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[str]:
    if "error" in body:
        observe.refused(status)
    return Response(status_code=status, content_type=JSON, body=response.to_json(body), headers=headers)


def _request_error(err: RequestError) -> Response[str]:
    if err.status >= 500:
        observe.logger.exception("read refused: %s", err.message)
    return _json(err.status, response.error(err.status, err.message))


def _no_route(_err: NotFoundError) -> Response[str]:
    message = (
        "no such route; use GET /items/{table}?<key attributes>, POST /items/{table}/batch"
        " or GET /items/{table}/query?<partition key>=..."
    )
    return _json(404, response.error(404, message))


def _unexpected(_err: Exception) -> Response[str]:
    observe.logger.exception("unexpected error in an HTTP read")
    return _json(500, response.error(500, response.GENERIC_ERROR))


def _resolver(app: ApiGatewayResolver) -> ApiGatewayResolver:
    app.include_router(router)
    app.exception_handler(RequestError)(_request_error)
    app.not_found(_no_route)
    app.exception_handler(Exception)(_unexpected)
    return app


function_url = _resolver(LambdaFunctionUrlResolver(debug=False))
http_api = _resolver(APIGatewayHttpResolver(debug=False))


def is_http(event: object) -> bool:
    # dict first: an ABC check costs a direct invoke's hit about a microsecond
    context = event.get("requestContext") if isinstance(event, dict | Mapping) else None
    return context is not None and isinstance(context, Mapping) and isinstance(context.get("http"), Mapping)


def resolve(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    domain = str(event["requestContext"].get("domainName", ""))
    is_function_url = ".lambda-url." in domain
    refusal = _refusal(event, needs_stage=not is_function_url)
    if refusal is not None:
        return refusal
    app = function_url if is_function_url else http_api
    return app.resolve(event, context)


def _refusal(event: Mapping[str, Any], needs_stage: bool) -> dict[str, Any] | None:
    """An answer for an event the resolvers cannot route: malformed (400), or a method they do not know (405).

    Powertools raises ``KeyError`` on a missing field, and routes an unknown
    method (``TRACE``, ``BREW``) to "no such route".
    """
    context = event["requestContext"]
    fields = {"requestContext.http.method": context["http"].get("method"), "rawPath": event.get("rawPath")}
    if needs_stage:
        fields["requestContext.stage"] = context.get("stage")
    missing = [name for name, value in fields.items() if not isinstance(value, str)]
    if missing:
        return _raw(400, response.error(400, f"not an HTTP request event: {missing[0]} is missing"))
    if fields["requestContext.http.method"] not in ("GET", *OTHER_METHODS):
        return _raw(405, response.error(405, "only GET is supported"), {"Allow": "GET"})
    return None


def _raw(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A payload 2.0 answer built without a resolver (the event could not be routed)."""
    observe.refused(status)
    return {
        "statusCode": status,
        "headers": {"Content-Type": JSON, **(headers or {})},
        "body": response.to_json(body),
        "isBase64Encoded": False,
    }
