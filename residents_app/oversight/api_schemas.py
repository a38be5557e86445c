"""Documented responses of the oversight JSON API (the handlers build the dicts; alt_response)."""

from __future__ import annotations

from marshmallow import Schema, fields


class ChainBreakOutSchema(Schema):
    seq = fields.Integer(metadata={"example": 17})
    id = fields.Integer(allow_none=True, metadata={"example": 2301})
    kind = fields.String(metadata={"example": "ballot.cast"})
    problem = fields.String(metadata={"example": "hash_mismatch"})
    message = fields.String(metadata={"example": "第 17 条记录的哈希与内容不符"})


class ChainVerificationSchema(Schema):
    estate_id = fields.Integer(metadata={"example": 1})
    ok = fields.Boolean(metadata={"example": True})
    entry_count = fields.Integer(metadata={"example": 240})
    head_seq = fields.Integer(metadata={"example": 240})
    head_hash = fields.String(metadata={"example": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"})
    broken = fields.Nested(ChainBreakOutSchema, allow_none=True)
