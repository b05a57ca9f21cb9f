"""Autopay over the API, for residents: each bound account's autopay, the cap, switching it on
(the first card payment, as in the cabinet), switching it off and removing the saved card.
Thin: the rules and the Russian texts are app.services.autopay's and the cabinet's
(app.views.autopay). Another's or no account, card or payment is a 404 «Не найдено.» and
changes nothing; a body the spec refuses is a 400; what the rules refuse a 422; switching on
that needs the first payment a 409 with the gateway's ``confirmation_url``. Organizations'
users have no right to it (403)."""
from __future__ import annotations

import re

from flask import g, request, url_for
from flask_appbuilder.api import BaseApi, expose, protect, safe
from flask_appbuilder.security.decorators import permission_name
from marshmallow import Schema, ValidationError, fields

from app.extensions import db, reads_only
from app.services import autopay, payment_states
from app.services.russian import rubles
from app.views.api_base import PortalApiMixin
from app.views.api_fields import RussianSchema, boolean, money_field, quantized, string
from app.views.api_query import MAX_ID
from app.views.autopay import SETUP_TEXT
from app.views.formats import local_today

#: A cap as the API takes it: rubles, and kopecks after a point («1500», «1500.5», «1500.00»).
CAP = r"^[0-9]{1,9}(\.[0-9]{1,2})?$"
BAD_CAP = "Предел суммы — рубли и копейки через точку, например «1500.00», или null."
#: The cabinet's consent box, as a field of the body.
NO_CONSENT = "Чтобы включить автоплатёж, подтвердите согласие на списания с карты."
CAP_SAVED = "Предел суммы автоплатежа сохранён."
CAP_CLEARED = "Предел снят: автоплатёж оплачивает всю сумму к оплате."
BACK_ON = "Автоплатёж снова включён с сохранённой картой."
SWITCHED_OFF = "Автоплатёж выключен. Карта сохранена: её можно удалить."
CARD_REMOVED = "Карта удалена, автоплатёж с неё выключен."
#: A payment's key as the portal makes them (a UUID), and no longer than its column.
ORDER_KEY = r"^[0-9A-Za-z_-]{1,64}$"
STATUS = ("none — не включался, pending — ждём первый платёж, active — включён, "
          "off — выключен")


def first_payment_message(amount) -> str:
    return (f"Автоплатёж включится после первого платежа картой: оплатите {rubles(amount)} на "
            "странице платёжной системы (confirmation_url) и отметьте «Сохранить карту для "
            "автоплатежа».")


class AutopayCardSchema(Schema):
    id = fields.Integer(required=True, metadata={
        "description": "id сохранённой карты (DELETE /api/v1/autopay/cards/{method_id})"})
    last4 = fields.String(required=True, metadata={"description": "Последние 4 цифры"})
    expiry = fields.String(required=True, metadata={
        "description": "Срок действия ММ/ГГ (пусто, если неизвестен)", "example": "12/30"})
    expiry_month = fields.Integer(allow_none=True, required=True)
    expiry_year = fields.Integer(allow_none=True, required=True)
    type = fields.String(attribute="card_type", allow_none=True, required=True,
                         metadata={"description": "Платёжная система карты", "example": "Visa"})
    label = fields.String(required=True, metadata={"example": "Visa •••• 4242"})


class AutopayNextChargeSchema(Schema):
    date = fields.Date(attribute="on", required=True,
                       metadata={"description": "День списания"})
    amount = money_field("Сумма списания, руб. (не больше предела)", required=True)
    period = fields.Date(required=True, metadata={"description": "Месяц счёта (первое число)"})


class AutopaySchema(Schema):
    account_id = fields.Integer(required=True)
    number = fields.String(required=True, metadata={"description": "Номер лицевого счёта"})
    address = fields.String(required=True)
    balance = money_field("Сальдо, руб.: больше нуля — долг", required=True)
    status = fields.String(required=True, metadata={
        "enum": ["none", "pending", "active", "off"], "description": STATUS})
    cap = money_field("Предел одного списания, руб. (null — без предела)", allow_none=True,
                      required=True)
    card = fields.Nested(AutopayCardSchema, allow_none=True, required=True,
                         metadata={"description": "Сохранённая карта (null — нет)"})
    card_usable = fields.Boolean(required=True, metadata={
        "description": "Карта не просрочена: автоплатёж включится снова без платежа"})
    next_charge = fields.Nested(AutopayNextChargeSchema, attribute="next", allow_none=True,
                                required=True, metadata={
                                    "description": "Ближайшее списание (null — не ожидается)"})
    first_payment = money_field(
        "Сколько спишет первый платёж при включении, руб. (null — платёж не нужен)",
        allow_none=True, required=True)
    failures = fields.Integer(required=True,
                              metadata={"description": "Неудачных списаний подряд"})


class AutopayListSchema(Schema):
    available = fields.Boolean(required=True, metadata={
        "description": "Платёжная система сохраняет карты (иначе автоплатёж не включить)"})
    count = fields.Integer(required=True)
    result = fields.List(fields.Nested(AutopaySchema), required=True)


class AutopayOneSchema(Schema):
    id = fields.Integer(required=True, metadata={"description": "id лицевого счёта"})
    result = fields.Nested(AutopaySchema, required=True)


class AutopayDoneSchema(AutopayOneSchema):
    message = fields.String(required=True, metadata={"description": "Что сделано, для человека"})


class AutopayChangeSchema(RussianSchema):
    cap = string(required=True, allow_none=True, metadata={
        "description": "Предел одного списания, руб.; null — без предела", "pattern": CAP,
        "example": "1500.00"})
    consent = boolean(load_default=False, metadata={
        "description": "Согласие на списания с карты: сумма к оплате списывается за день до "
                       "срока оплаты, не больше предела; выключить можно в любой момент. "
                       "Нужно, чтобы включить автоплатёж"})


class AutopayFirstPaymentSchema(Schema):
    message = fields.String(required=True)
    confirmation_url = fields.String(required=True, metadata={
        "format": "uri", "description": "Страница платёжной системы: открыть плательщику"})
    return_url = fields.String(required=True, metadata={
        "format": "uri", "description": "Куда платёжная система вернёт плательщика (страница "
                                        "кабинета); приложение может закрыть браузер, когда "
                                        "он перейдёт на этот адрес"})
    order_key = fields.String(required=True, metadata={
        "description": "Ключ платежа: GET /api/v1/autopay/setup/{order_key} скажет, чем он "
                       "закончился"})
    amount = money_field("Сумма первого платежа, руб.", required=True)


class AutopaySetupSchema(AutopayDoneSchema):
    outcome = fields.String(required=True, metadata={
        "enum": ["active", "pending", "no_card", "failed"],
        "description": "active — включён; pending — ждём подтверждения банка; no_card — "
                       "платёж прошёл, карта не сохранена; failed — платёж не прошёл"})


def cap_value(raw: str | None):
    """The cap of the body: None, or a positive amount (AutopayError for zero)."""
    if raw is not None and not re.fullmatch(CAP, raw):
        raise ValidationError({"cap": [BAD_CAP]})
    return autopay.parse_cap(raw)


class AutopayApi(PortalApiMixin, BaseApi):
    """GET the autopay of the resident's accounts; PUT the cap or switch on; DELETE switch off;
    DELETE a saved card; GET how a first payment ended."""

    resource_name = "autopay"
    openapi_spec_component_schemas = (AutopayCardSchema, AutopayNextChargeSchema, AutopaySchema,
                                      AutopayListSchema, AutopayOneSchema, AutopayDoneSchema,
                                      AutopayChangeSchema, AutopayFirstPaymentSchema,
                                      AutopaySetupSchema)
    change_schema = AutopayChangeSchema()
    item_schema = AutopaySchema()

    def _one(self, account_id: int):
        """The account's autopay, or None when it is not one of the user's."""
        if not 0 < account_id <= MAX_ID:
            return None
        try:
            return autopay.account_autopay(db.session, g.user.id, account_id, local_today())
        except autopay.NotFound:
            return None

    def _done(self, item, message: str):
        return self.response(200, id=item.account_id, message=message,
                             result=self.item_schema.dump(item))

    @expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    @reads_only
    def get_list(self):
        """Autopay of every account of the resident
        ---
        get:
          summary: Автоплатёж по всем своим лицевым счетам
          responses:
            200:
              description: По одному элементу на каждый привязанный лицевой счёт
              content:
                application/json:
                  schema:
                    $ref: '#/components/schemas/AutopayListSchema'
            403:
              $ref: '#/components/responses/Forbidden'
        """
        items = autopay.overview(db.session, g.user.id, local_today())
        return self.response(200, available=autopay.available(), count=len(items),
                             result=self.item_schema.dump(items, many=True))

    @expose("/<int:account_id>", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    @reads_only
    def get(self, account_id: int):
        """One account's autopay; another's id is 404, like a missing one
        ---
        get:
          summary: Автоплатёж по одному лицевому счёту
          parameters:
          - in: path
            name: account_id
            required: true
            schema:
              type: integer
              minimum: 1
              maximum: 2147483647
          responses:
            200:
              description: Автоплатёж по счёту
              content:
                application/json:
                  schema:
                    $ref: '#/components/schemas/AutopayOneSchema'
            403:
              $ref: '#/components/responses/Forbidden'
            404:
              $ref: '#/components/responses/NotFound'
        """
        item = self._one(account_id)
        if item is None:
            return self.response_404()
        return self.response(200, id=account_id, result=self.item_schema.dump(item))

    @expose("/<int:account_id>", methods=["PUT"])
    @protect()
    @safe
    @permission_name("put")
    def put(self, account_id: int):
        """Set the cap of an autopay that is on, or switch it on (with the consent)
        ---
        put:
          summary: Изменить предел или включить автоплатёж
          description: >-
            Включённому автоплатежу меняет предел (cap; null — без предела). Выключенный
            включает, если consent = true: с сохранённой непросроченной картой — сразу
            (200), иначе начинает первый платёж картой на сумму долга с сохранением карты и
            отвечает 409 с confirmation_url — страницей платёжной системы; автоплатёж
            включится, когда платёж пройдёт с сохранённой картой.
          parameters:
          - in: path
            name: account_id
            required: true
            schema:
              type: integer
              minimum: 1
              maximum: 2147483647
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  $ref: '#/components/schemas/AutopayChangeSchema'
          responses:
            200:
              description: Предел сохранён или автоплатёж снова включён с сохранённой картой
              content:
                application/json:
                  schema:
                    $ref: '#/components/schemas/AutopayDoneSchema'
            403:
              $ref: '#/components/responses/Forbidden'
            404:
              $ref: '#/components/responses/NotFound'
            409:
              description: >-
                Нужен первый платёж картой: он начат, откройте confirmation_url
              links:
                GetSetupOutcome:
                  operationId: autopay_setup
                  parameters:
                    order_key: $response.body#/order_key
              content:
                application/json:
                  schema:
                    $ref: '#/components/schemas/AutopayFirstPaymentSchema'
            422:
              $ref: '#/components/responses/Unprocessable'
            503:
              description: Платёжная система не ответила; деньги не списаны
              content:
                application/json:
                  schema:
                    type: object
                    required: [message]
                    properties:
                      message:
                        type: string
        """
        try:
            payload = self.json_body(self.change_schema)
        except ValidationError as error:
            return self.response_invalid(error)
        item = self._one(account_id)
        if item is None:
            return self.response_404()
        try:
            cap = cap_value(payload["cap"])
            if item.status == "active":
                autopay.set_cap(db.session, g.user.id, account_id, cap, request.remote_addr)
                return self._done(self._one(account_id), CAP_SAVED if cap else CAP_CLEARED)
            if not payload["consent"]:
                return self.response_422(message=NO_CONSENT)
            state = autopay.turn_on(
                db.session, g.user, account_id, cap, return_url, local_today(),
                request.remote_addr)
        except ValidationError as error:
            return self.response_invalid(error)
        except (autopay.NotFound, payment_states.NotFound):
            db.session.rollback()
            return self.response_404()
        except payment_states.GatewayDown as error:
            return self.response(503, message=str(error))
        except (autopay.AutopayError, payment_states.PaymentError) as error:
            db.session.rollback()
            return self.response_422(message=str(error))
        if state is None:
            return self._done(self._one(account_id), BACK_ON)
        order = state.order
        back = return_url(order.order_key)
        return self.response(409, message=first_payment_message(order.amount),
                             confirmation_url=order.confirmation_url or back, return_url=back,
                             order_key=order.order_key, amount=quantized(order.amount))

    @expose("/<int:account_id>", methods=["DELETE"])
    @protect()
    @safe
    @permission_name("delete")
    def delete(self, account_id: int):
        """Switch autopay off at once (the card stays saved)
        ---
        delete:
          summary: Выключить автоплатёж
          parameters:
          - in: path
            name: account_id
            required: true
            schema:
              type: integer
              minimum: 1
              maximum: 2147483647
          responses:
            200:
              description: Автоплатёж выключен
              content:
                application/json:
                  schema:
                    $ref: '#/components/schemas/AutopayDoneSchema'
            403:
              $ref: '#/components/responses/Forbidden'
            404:
              $ref: '#/components/responses/NotFound'
        """
        if not 0 < account_id <= MAX_ID:
            return self.response_404()
        try:
            autopay.switch_off(db.session, g.user.id, account_id, request.remote_addr)
        except autopay.NotFound:
            return self.response_404()
        item = self._one(account_id)
        if item is None:  # unbound in the meantime: off all the same
            return self.response_404()
        return self._done(item, SWITCHED_OFF)

    @expose("/cards/<int:method_id>", methods=["DELETE"])
    @protect()
    @safe
    @permission_name("delete")
    def remove_card(self, method_id: int):
        """Remove a saved card: every autopay it paid goes off
        ---
        delete:
          summary: Удалить сохранённую карту
          parameters:
          - in: path
            name: method_id
            required: true
            description: id карты (card.id в ответах GET)
            schema:
              type: integer
              minimum: 1
              maximum: 2147483647
          responses:
            200:
              description: Карта удалена
              content:
                application/json:
                  schema:
                    type: object
                    required: [message]
                    properties:
                      message:
                        type: string
            403:
              $ref: '#/components/responses/Forbidden'
            404:
              $ref: '#/components/responses/NotFound'
        """
        if not 0 < method_id <= MAX_ID:
            return self.response_404()
        try:
            autopay.remove_card(db.session, g.user.id, method_id, request.remote_addr)
        except autopay.NotFound:
            return self.response_404()
        return self.response(200, message=CARD_REMOVED)

    @expose("/setup/<order_key>", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def setup(self, order_key: str):
        """How the first payment of an autopay ended: the gateway is asked, as on the
        cabinet's return page
        ---
        get:
          summary: Чем закончился первый платёж автоплатежа
          parameters:
          - in: path
            name: order_key
            required: true
            description: order_key из ответа 409 на PUT
            schema:
              type: string
              pattern: '^[0-9A-Za-z_-]{1,64}$'
          responses:
            200:
              description: Итог первого платежа и автоплатёж по счёту
              content:
                application/json:
                  schema:
                    $ref: '#/components/schemas/AutopaySetupSchema'
            403:
              $ref: '#/components/responses/Forbidden'
            404:
              $ref: '#/components/responses/NotFound'
        """
        if not re.fullmatch(ORDER_KEY, order_key):
            return self.response_404()
        try:
            state = payment_states.confirm_return(db.session, g.user.id, order_key,
                                                  request.remote_addr)
        except payment_states.NotFound:
            return self.response_404()
        outcome = autopay.setup_outcome(db.session, g.user.id, order_key)
        item = self._one(state.parts[0].account_id) if outcome != "none" else None
        if item is None:  # not an autopay's first payment, or the account since unbound
            return self.response_404()
        return self.response(200, id=item.account_id, outcome=outcome,
                             message=SETUP_TEXT[outcome][0],
                             result=self.item_schema.dump(item))


def return_url(order_key: str) -> str:
    """Where the gateway sends the payer back: the cabinet's return page, which asks the
    gateway and says how the first payment went (the app may close its browser there)."""
    return url_for("AutopayView.setup_return", order_key=order_key, _external=True)
