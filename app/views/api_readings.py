"""Meter readings over the API: the history of the user's meters, and a submission in the web
form's two steps, check (consumption and estimated charge, nothing saved) then submit, both
through app.services.readings, so the rules and messages are the web's. A body the spec
refuses is a 400; another's (or no) account or meter a 404; a reading the rules refuse (less
than the previous one, the window closed, not confirmed) a 422. Each with a Russian message,
and nothing changed. An implausible reading, once confirmed, is saved with the status
"flagged" («На проверке»): billed only when staff accept it."""
from __future__ import annotations

import re

from flask import current_app, g, request
from flask_appbuilder.api import expose, protect, safe
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app import models as m
from app.extensions import db
from app.services import readings, tariffs
from app.views.api_base import NOT_FOUND, OwnRowsApi, visible_account_ids
from app.views.api_fields import (
    RussianSchema,
    UtcDateTime,
    boolean,
    integer,
    length,
    money_field,
    positive_id,
    quantized,
    string,
)
from app.views.formats import local_today
from app.views.readings import accepted_message

WHOLE = {"type": "string", "format": "decimal", "pattern": r"^\d+$", "example": "12345"}
MAX_METERS = 10
#: A register's value as the API takes it: digits only (the web form also takes spaces and a
#: zero fraction, as typed by a person).
DIGITS = r"^[0-9]+$"
ONLY_DIGITS = "{label}: только цифры, без пробелов и знаков, например 12345."


class NotFound(LookupError):
    """An account or meter that is not the user's: a 404 with this message."""


def reading_value(description: str, **kwargs) -> fields.Decimal:
    """A register's value in whole kWh, as a string."""
    return fields.Decimal(places=0, as_string=True, metadata={**WHOLE, "description":
                                                              description}, **kwargs)


def zone_values(description: str) -> fields.Dict:
    return fields.Dict(keys=fields.String(), values=fields.String(allow_none=True),
                       required=True, metadata={"description": description,
                                                "example": {"t1": "1620"}})


class ReadingSchema(Schema):
    id = fields.Integer(required=True)
    meter_id = fields.Integer(required=True)
    period = fields.Date(required=True, metadata={"description": "Первое число месяца"})
    t1 = reading_value("Показание T1 (или единственное)", required=True)
    t2 = reading_value("Показание T2", allow_none=True)
    t3 = reading_value("Показание T3", allow_none=True)
    source = fields.String(required=True, metadata={"enum": m.ReadingSource.values()})
    status = fields.String(required=True, metadata={
        "enum": m.ReadingStatus.values(),
        "description": "accepted — принято, учитывается в счёте; flagged — «На проверке»: "
                       "показание неправдоподобно, в счёт попадёт только после проверки "
                       "специалистом; rejected — отклонено после проверки"})
    submitted_at = UtcDateTime(required=True)
    review_note = fields.String(allow_none=True, metadata={
        "description": "Пояснение к статусу: почему показание на проверке, итог проверки"})


class MeterValuesSchema(RussianSchema):
    meter_id = integer(required=True, validate=positive_id(),
                       metadata={"description": "id счётчика (GET /api/v1/meter/)"})
    t1 = string(required=True, validate=length(20),
                metadata={"description": "Показание, целые кВт·ч (T1 или единственное)",
                          "example": "12345", "pattern": DIGITS})
    t2 = string(allow_none=True, load_default=None, validate=length(20),
                metadata={"description": "Показание T2 (двух- и трёхзонные счётчики)",
                          "pattern": DIGITS})
    t3 = string(allow_none=True, load_default=None, validate=length(20),
                metadata={"description": "Показание T3 (трёхзонные счётчики)",
                          "pattern": DIGITS})


class ReadingSubmissionSchema(RussianSchema):
    account_id = integer(required=True, validate=positive_id())
    meters = fields.List(
        fields.Nested(MeterValuesSchema, error_messages={"type": "Ожидается объект JSON."}),
        required=True, validate=validate.Length(min=1, max=MAX_METERS,
                                                error="Укажите от 1 до 10 счётчиков."),
        error_messages={"required": "Обязательное поле.", "invalid": "Ожидается список.",
                        "null": "Поле не может быть пустым (null)."})
    confirmed = boolean(load_default=False, metadata={
        "description": "Подтверждаю показания, требующие подтверждения (переход через ноль, "
                       "неправдоподобное показание: оно сохранится со статусом «На проверке»)"})


class AssessmentSchema(Schema):
    meter_id = fields.Integer(required=True)
    serial = fields.String(required=True)
    period = fields.Date(required=True)
    values = zone_values("Переданные показания по зонам")
    previous = zone_values("Предыдущие принятые показания по зонам (null — нет)")
    previous_period = fields.Date(allow_none=True, required=True)
    consumption = zone_values("Потребление по зонам, кВт·ч")
    total_kwh = fields.String(required=True, metadata=WHOLE)
    rollover_zones = fields.List(fields.String(), required=True)
    held = fields.Boolean(required=True, metadata={
        "description": "Неправдоподобно: после подтверждения сохранится со статусом "
                       "«На проверке» (flagged) и не попадёт в счёт до проверки специалистом"})
    held_reasons = fields.List(fields.String(), required=True, metadata={
        "description": "Почему показание неправдоподобно (пусто, если held = false)"})
    spike = fields.Boolean(required=True, metadata={
        "description": "То же, что held (прежнее имя поля)", "deprecated": True})
    needs_confirmation = fields.Boolean(required=True)
    estimate = money_field("Ориентировочная сумма начисления, руб. (null — нет тарифа)",
                           allow_none=True, required=True)


class CheckResultSchema(Schema):
    needs_confirmation = fields.Boolean(required=True)
    assessments = fields.List(fields.Nested(AssessmentSchema), required=True)


class SubmitResultSchema(Schema):
    message = fields.String(required=True)
    result = fields.List(fields.Nested(ReadingSchema), required=True)


def check_digits(meters: list[m.Meter], items: list[dict]) -> None:
    """Every value given is digits, as the spec says; else ValidationError with the web's
    message where it has one (``-5``: not negative), named as the web names the register."""
    for meter, item in zip(meters, items, strict=True):
        labels = readings.ZONE_LABELS[meter.zones]
        for zone in readings.ZONES:
            value = item[zone]
            if value is None or re.fullmatch(DIGITS, value):
                continue
            label = labels.get(zone, zone.upper())
            try:
                readings.parse_value(value, label)
                message = ONLY_DIGITS.format(label=label)
            except readings.ReadingError as error:
                message = str(error)
            except ArithmeticError:  # NaN: the service cannot compare it
                message = ONLY_DIGITS.format(label=label)
            if len(meters) > 1:
                message = f"Счётчик № {meter.serial}. {message}"
            raise ValidationError(message)


def _whole(values: dict) -> dict:
    return {zone: None if value is None else str(value.quantize(1))
            for zone, value in values.items()}


class ReadingApi(OwnRowsApi):
    """GET: readings of the user's meters. POST /check and POST /: a submission."""

    resource_name = "reading"
    datamodel = SQLAInterface(m.Reading)
    row_schema = ReadingSchema
    include_route_methods = {"get", "get_list", "check", "submit"}
    openapi_spec_component_schemas = (ReadingSubmissionSchema, CheckResultSchema,
                                      SubmitResultSchema)
    list_columns = ["id", "meter_id", "period", "t1", "t2", "t3", "source", "status",
                    "submitted_at", "review_note"]
    order_columns = ["period", "submitted_at", "id"]
    search_columns = ["meter_id", "period", "status"]
    base_order = ("period", "desc")
    submission = ReadingSubmissionSchema()

    def _assess(self):
        """Load the body, find the account and its meters, and assess: (account, meters,
        assessments, payload). ValidationError (400), NotFound (404), ReadingError (422)."""
        payload = self.json_body(self.submission)
        account = db.session.execute(
            select(m.PersonalAccount)
            .where(m.PersonalAccount.id == payload["account_id"],
                   m.PersonalAccount.id.in_(visible_account_ids(g.user)))
        ).scalar_one_or_none()
        if account is None:
            raise NotFound(NOT_FOUND)
        wanted = [item["meter_id"] for item in payload["meters"]]
        found = {meter.id: meter for meter in db.session.execute(
            select(m.Meter).where(m.Meter.id.in_(wanted), m.Meter.account_id == account.id,
                                  m.Meter.active.is_(True))
            .options(joinedload(m.Meter.account))).scalars()}
        unknown = [str(pk) for pk in dict.fromkeys(wanted) if pk not in found]
        if unknown:
            raise NotFound(
                f"На этом лицевом счёте нет действующего счётчика с id {', '.join(unknown)}.")
        meters = [found[pk] for pk in wanted]
        check_digits(meters, payload["meters"])
        if len(set(wanted)) != len(wanted):
            raise readings.ReadingError("Каждый счётчик укажите один раз.")
        raw = {item["meter_id"]: {zone: item[zone] for zone in readings.ZONES
                                  if item[zone] is not None} for item in payload["meters"]}
        rules = readings.Rules.from_config(current_app.config)
        return account, meters, readings.assess_meters(db.session, meters, raw, local_today(),
                                                       rules), payload

    @expose("/check", methods=["POST"])
    @protect()
    @safe
    @permission_name("post")
    def check(self):
        """Check readings as the web form's first step: nothing is saved
        ---
        post:
          summary: Проверить показания (ничего не сохраняется)
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  $ref: '#/components/schemas/ReadingSubmissionSchema'
          responses:
            200:
              description: Потребление и ориентировочная сумма по каждому счётчику
              content:
                application/json:
                  schema:
                    $ref: '#/components/schemas/CheckResultSchema'
            403:
              $ref: '#/components/responses/Forbidden'
            404:
              $ref: '#/components/responses/NotFound'
            422:
              $ref: '#/components/responses/Unprocessable'
        """
        try:
            account, meters, assessments, _payload = self._assess()
        except ValidationError as error:
            return self.response_invalid(error)
        except NotFound as error:
            return self.response(404, message=str(error))
        except readings.ReadingError as error:
            return self.response_422(message=str(error))
        serials = {meter.id: meter for meter in meters}
        result = []
        for item in assessments:
            meter = serials[item.meter_id]
            estimate = tariffs.estimate(db.session, account, meter.zones, item.consumption,
                                        item.period)
            result.append({
                "meter_id": meter.id, "serial": meter.serial, "period": item.period.isoformat(),
                "values": _whole(item.values), "previous": _whole(item.previous),
                "previous_period": item.previous_period.isoformat()
                if item.previous_period else None,
                "consumption": _whole(item.consumption), "total_kwh": str(item.total.quantize(1)),
                "rollover_zones": list(item.rollover_zones), "held": item.held,
                "held_reasons": [doubt.text for doubt in item.doubts], "spike": item.held,
                "needs_confirmation": item.needs_confirmation,
                "estimate": quantized(estimate.total) if estimate else None,
            })
        return self.response(200, needs_confirmation=any(a.needs_confirmation
                                                         for a in assessments),
                             assessments=result)

    @expose("/", methods=["POST"])
    @protect()
    @safe
    @permission_name("post")
    def submit(self):
        """Submit readings as the web form's confirm step
        ---
        post:
          summary: Передать показания
          description: >-
            Показания, требующие подтверждения (переход через ноль, неправдоподобное
            показание), принимаются только с confirmed: true; при любой ошибке не сохраняется
            ничего. Неправдоподобное показание сохраняется со статусом flagged («На
            проверке») и попадает в счёт только после проверки специалистом.
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  $ref: '#/components/schemas/ReadingSubmissionSchema'
          responses:
            201:
              description: Показания приняты
              links:
                GetReading:
                  operationId: reading_get
                  parameters:
                    pk: $response.body#/result/0/id
              content:
                application/json:
                  schema:
                    $ref: '#/components/schemas/SubmitResultSchema'
            403:
              $ref: '#/components/responses/Forbidden'
            404:
              $ref: '#/components/responses/NotFound'
            422:
              $ref: '#/components/responses/Unprocessable'
        """
        try:
            _account, meters, assessments, payload = self._assess()
            saved = readings.submit_all(db.session, meters, assessments,
                                        confirmed=payload["confirmed"], source="app",
                                        user_id=g.user.id, ip=request.remote_addr)
        except ValidationError as error:
            return self.response_invalid(error)
        except NotFound as error:
            return self.response(404, message=str(error))
        except readings.ReadingError as error:
            db.session.rollback()
            return self.response_422(message=str(error))
        message = accepted_message(assessments, meters)
        return self.response(201, message=message, result=ReadingSchema().dump(saved, many=True))
