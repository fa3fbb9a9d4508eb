"""Where moto spends a batch's CPU on work AWS does not do, the same result made cheaply.
Each was a tenth or more of the local stack's CPU in `bench/batch.py` (py-spy, GIL held):

- a DynamoDB transaction copies every table it touches first, to roll back on failure: a
  batch makes two per item, so each copied a table growing with the batch. It keeps copies
  of the items it writes instead (what a rollback needs);
- the Step Functions engine makes a new boto3 client for every Lambda task and every
  Distributed Map reader: clients are kept, one per service, region and endpoint;
- a JSONPath (an ASL path, an EventBridge input path) is parsed by a parser built anew
  for each use, parser tables and all: parsed paths are kept, one per text;
- every execution parses its state machine's definition again (ANTLR, a tenth of the CPU
  by itself): parsed programs are kept, one per definition. The parsed program holds no
  state of an execution (a Distributed Map's items already share one);
- every request looks its backend up through a lock all of moto shares, in case the
  account's backends must be created: with a batch's threads, and the GIL handed over only
  every 50 ms (in_process.py), a thread preempted holding it stalled every other request.
  Once an account's backends exist, the lookup is a dictionary's.

`atomic_dynamodb()` adds what AWS does and moto does not: a DynamoDB request is atomic. moto
updates an item in place, so a read on another thread could meet it half changed
("dictionary changed size during iteration": a 500 from GET /v1/generations/{id} while the
workflow wrote the job). With it one DynamoDB request runs at a time. The integration tests
take it; the local stack does not: with its GIL handed over every 50 ms (in_process.py), a
lock handed from thread to thread waits up to that long each time, and a batch of 1,000
went at half the pace (bench/batch.py).
"""

from __future__ import annotations

import copy
import os
import threading
from functools import cache, lru_cache
from typing import Any

import boto3
import jsonpath_ng.ext.parser
import jsonpath_ng.parser
from moto.core.base_backend import BackendDict
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import boto_client, json_path

_transactions = threading.local()
_transact_write_items = DynamoDBBackend.transact_write_items
_parse = cache(jsonpath_ng.parser.parse)
_parse_extended = cache(jsonpath_ng.ext.parser.parse)
_parse_definition = lru_cache(maxsize=64)(AmazonStateLanguageParser.parse)
_backends_of = BackendDict.__getitem__
_dynamodb_action = DynamoHandler.call_action
_dynamodb_lock = threading.RLock()


def install() -> None:
    DynamoDBBackend.transact_write_items = _transaction  # type: ignore[method-assign]
    Table.__deepcopy__ = _table_copy  # type: ignore[attr-defined]
    boto_client.boto3 = _Clients()  # type: ignore[attr-defined]
    jsonpath_ng.ext.parse = _parse_extended  # type: ignore[attr-defined]  # EventBridge: at each use
    json_path.parse = _parse_extended  # type: ignore[attr-defined]
    result_path.parse = _parse  # type: ignore[attr-defined]
    AmazonStateLanguageParser.parse = staticmethod(_parse_definition)  # type: ignore[method-assign]
    BackendDict.__getitem__ = _account_backends  # type: ignore[method-assign]


def atomic_dynamodb() -> None:
    DynamoHandler.call_action = _one_dynamodb_request_at_a_time  # type: ignore[method-assign]


def _one_dynamodb_request_at_a_time(self: DynamoHandler) -> Any:
    with _dynamodb_lock:
        return _dynamodb_action(self)


def _account_backends(self: BackendDict[Any], account_id: str) -> Any:
    # An account is in a BackendDict only once it is registered for reset (moto's reset
    # empties both): nothing is left to create.
    if dict.__contains__(self, account_id):
        return dict.__getitem__(self, account_id)
    return _backends_of(self, account_id)


# ---- DynamoDB transactions ----------------------------------------------------------------

Saved = tuple[Table, DynamoType, DynamoType | None, Any]


def _transaction(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    saved = [s for s in (_save(self, entry) for entry in transact_items[:100]) if s]
    _transactions.active = True
    try:
        _transact_write_items(self, transact_items)
    except Exception:
        for table, hash_key, range_key, item in saved:
            _put_back(table, hash_key, range_key, item)
        raise
    finally:
        _transactions.active = False


def _save(backend: DynamoDBBackend, entry: dict[str, Any]) -> Saved | None:
    """The item one write of a transaction may change, as it is before (None: absent)."""
    try:
        kind, operation = next(iter(entry.items()))
        table = backend.tables[operation["TableName"]]
        key = operation["Item"] if kind == "Put" else operation["Key"]
        hash_key = DynamoType(key[table.hash_key_attr])
        range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    except (StopIteration, AttributeError, KeyError, TypeError):
        return None  # moto refuses the transaction before it writes anything
    return table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))


def _put_back(table: Table, hash_key: DynamoType, range_key: DynamoType | None, item: Any) -> None:
    if item is None:
        table.delete_item(hash_key, range_key)
    elif range_key is not None:
        table.items[hash_key][range_key] = item
    else:
        table.items[hash_key] = item


def _table_copy(self: Table, memo: dict[int, Any]) -> Table:
    if getattr(_transactions, "active", False):
        return self  # the transaction's own copy, which it needs only to roll back: see above
    # Any other copy of a table (backups, restores) is the deep copy it always was.
    reductor = self.__reduce_ex__(4)
    return copy._reconstruct(self, memo, *reductor)  # type: ignore[attr-defined,no-any-return]


# ---- The engine's clients -----------------------------------------------------------------


class _Clients:
    """Stands for boto3 where the engine makes its clients: the same client again for the
    same arguments and endpoint (botocore clients are thread-safe). The endpoint is the
    environment's when the engine names none: each local stack has its own."""

    def __init__(self) -> None:
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def client(self, **kwargs: Any) -> Any:
        key = (
            os.environ.get("AWS_ENDPOINT_URL"),
            *sorted((k, v) for k, v in kwargs.items() if k != "config"),
        )
        with self._lock:
            if key not in self._clients:
                self._clients[key] = boto3.client(**kwargs)
            return self._clients[key]
