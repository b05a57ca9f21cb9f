"""Reconciliation acts over the API, for organizations: the list of the organization's acts,
a request for a contract and a period, and the ready act as .xlsx or PDF. The rules (whose
contract, which dates, how many open requests) and the files are app.services.acts: a request
they refuse is a 422, another's contract a 404, a body the spec refuses a 400."""
from __future__ import annotations

from flask import current_app, g, request, send_file, url_for
from flask_appbuilder.api import expose, protect, safe
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from marshmallow import Schema, ValidationError, fields

from app import models as m
from app.extensions import db
from app.services import act_jobs, acts, audit
from app.views.api_base import OwnRowsApi
from app.views.api_fields import IsoDate, RussianSchema, UtcDateTime, integer, positive_id
from app.views.api_query import MAX_ID
from app.views.base import content_disposition

DATE = {"format": "date", "example": "2026-01-01"}


class ActSchema(Schema):
    id = fields.Integer(required=True)
    contract_id = fields.Integer(required=True)
    date_from = fields.Date(required=True)
    date_to = fields.Date(required=True)
    status = fields.String(required=True, metadata={
        "enum": m.ActStatus.values(),
        "description": "requested — запрошен, ready — сформирован (можно скачать), "
                       "rejected — отклонён (причина в note)"})
    requested_at = UtcDateTime(required=True)
    ready_at = UtcDateTime(allow_none=True)
    note = fields.String(allow_none=True, metadata={"description": "Причина отказа"})


def day(description: str) -> fields.Date:
    return IsoDate(required=True, metadata={**DATE, "description": description},
                   error_messages={"required": "Обязательное поле.",
                                   "null": "Поле не может быть пустым (null).",
                                   "invalid": "Ожидается дата ГГГГ-ММ-ДД."})


class ActRequestSchema(RussianSchema):
    contract_id = integer(required=True, validate=positive_id(),
                          metadata={"description": "id договора (GET /api/v1/contract/)"})
    date_from = day("Начало периода, ГГГГ-ММ-ДД")
    date_to = day("Конец периода (не позже сегодняшнего дня), ГГГГ-ММ-ДД")


class ActApi(OwnRowsApi):
    """The organization's reconciliation acts."""

    resource_name = "act"
    datamodel = SQLAInterface(m.ReconciliationAct)
    row_schema = ActSchema
    include_route_methods = {"get", "get_list", "request_act", "file"}
    openapi_spec_component_schemas = (ActRequestSchema,)
    list_columns = ["id", "contract_id", "date_from", "date_to", "status", "requested_at",
                    "ready_at", "note"]
    order_columns = ["requested_at", "date_from", "id"]
    search_columns = ["contract_id", "status"]
    base_order = ("requested_at", "desc")
    request_schema = ActRequestSchema()

    @expose("/", methods=["POST"])
    @protect()
    @safe
    @permission_name("post")
    def request_act(self):
        """Request the act of one of the organization's contracts for a period
        ---
        post:
          summary: Запросить акт сверки
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  $ref: '#/components/schemas/ActRequestSchema'
          responses:
            201:
              description: Запрос принят; акт появится со статусом ready
              headers:
                Location:
                  description: Адрес акта (GET)
                  required: true
                  schema:
                    type: string
              links:
                GetAct:
                  operationId: act_get
                  parameters:
                    pk: $response.body#/id
                GetActFile:
                  operationId: act_file
                  parameters:
                    pk: $response.body#/id
              content:
                application/json:
                  schema:
                    type: object
                    required: [id, result]
                    properties:
                      id:
                        type: integer
                      result:
                        $ref: '#/components/schemas/ActApi.get'
            403:
              $ref: '#/components/responses/Forbidden'
            404:
              $ref: '#/components/responses/NotFound'
            422:
              $ref: '#/components/responses/Unprocessable'
        """
        try:
            payload = self.json_body(self.request_schema)
            act = acts.request_act(db.session, g.user, payload["contract_id"],
                                   payload["date_from"], payload["date_to"])
        except ValidationError as error:
            return self.response_invalid(error)
        except acts.ActNotFound:
            db.session.rollback()
            return self.response_404()
        except acts.ActError as error:
            db.session.rollback()
            return self.response_422(message=str(error))
        response = self.response(201, id=act.id, result=ActSchema().dump(act))
        response.headers["Location"] = url_for(".get", pk=act.id)
        return response

    @expose("/<int:pk>/file", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def file(self, pk: int):
        """The ready act as a file
        ---
        get:
          summary: Скачать сформированный акт сверки
          parameters:
          - in: path
            name: pk
            required: true
            schema:
              type: integer
              minimum: 1
              maximum: 2147483647
          - in: query
            name: format
            schema:
              type: string
              enum: [xlsx, pdf]
              default: xlsx
          responses:
            200:
              description: Акт сверки
              content:
                application/vnd.openxmlformats-officedocument.spreadsheetml.sheet:
                  schema:
                    type: string
                    format: binary
                application/pdf:
                  schema:
                    type: string
                    format: binary
            202:
              description: Акт большой и готовится в фоне; повторите запрос позже
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      message:
                        type: string
            403:
              $ref: '#/components/responses/Forbidden'
            404:
              $ref: '#/components/responses/NotFound'
            409:
              description: Акт ещё не сформирован, отклонён или слишком большой для PDF
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      message:
                        type: string
        """
        act = self.datamodel.get(pk, self._base_filters) if 0 < pk <= MAX_ID else None
        if act is None:
            return self.response_404()
        fmt = request.args.get("format", "xlsx")
        if fmt not in acts.formats():
            return self.response_400(message=f"Формат «{fmt[:20]}» не поддерживается: "
                                             f"доступны {', '.join(acts.formats())}.")
        if act.status != "ready":
            return self.response(409, message=f"Акт сверки № {act.id} ещё не сформирован."
                                 if act.status == "requested" else
                                 f"Акт сверки № {act.id} отклонён: {act.note or ''}".strip())
        try:
            large = act_jobs.prepare(db.session, act, fmt, g.user.id, current_app.config)
        except acts.ActError as error:
            return self.response(409, message=str(error))
        if large is not None and large.path is None:
            if large.job.status == "failed":
                return self.response(409, message=large.message)
            response = self.response(202, message=large.message)
            response.headers["Retry-After"] = "30"
            return response
        if large is None:
            stream, mimetype, name = acts.render(db.session, act, fmt, current_app.config)
        else:
            exporter = acts.exporters()[fmt]
            stream, mimetype = large.path.open("rb"), exporter.mimetype
            name = f"{acts.stem(act.contract.number, act.date_from, act.date_to)}." \
                   f"{exporter.extension}"
        audit.record(db.session, "act.downloaded", actor_id=g.user.id, object_type="act",
                     object_id=act.id, ip=request.remote_addr,
                     details={"page": "api", "document": "act",
                              **({"job": large.job.id} if large is not None else {})})
        fallback = acts.ascii_filename(act, fmt)
        response = send_file(stream, mimetype=mimetype, as_attachment=True,
                             download_name=fallback)
        response.headers["Content-Disposition"] = content_disposition(name, fallback=fallback)
        response.headers["Cache-Control"] = "private, no-store"
        return response
