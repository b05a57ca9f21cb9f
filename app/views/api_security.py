"""The API's sign-in: FAB's JWT security API (/api/v1/security/login, /refresh, /logout) with
the portal's entrance rules, as on the web forms: residents by phone, e-mail or login,
organizations by login, password and branch, both through the security manager's throttled,
audited password check (app.services.signin_guard); each sign-in is a row of
app.services.sessions that its tokens name."""
from __future__ import annotations

from flask import g, request
from flask_appbuilder.api import expose, safe
from flask_appbuilder.const import API_SECURITY_ACCESS_TOKEN_KEY, API_SECURITY_REFRESH_TOKEN_KEY
from flask_appbuilder.security.api import SecurityApi
from flask_jwt_extended import create_access_token, create_refresh_token, get_jwt, jwt_required
from flask_jwt_extended import current_user as jwt_user
from marshmallow import Schema, ValidationError, fields, validate

from app.extensions import db
from app.models import password_stamp
from app.services import auth as auth_service
from app.services import challenge, sessions
from app.views.api_base import SIGN_IN_AGAIN, PortalApiMixin, unauthorized
from app.views.api_fields import RussianSchema, boolean, integer, length, positive_id, string
from app.views.signing import SESSION_CLAIM, STAMP_CLAIM, api_lifetime

SIGNIN_FAILED = "Неверный логин или пароль."
BUSINESS_SIGNIN_FAILED = "Неверный логин, пароль или филиал."
CODE_SIGNIN_HINT = ("Не хотите ждать — войдите по одноразовому коду из SMS или письма: «Забыли "
                    "пароль?» на странице входа на сайте.")
MUST_CHANGE_PASSWORD = ("Задайте новый пароль в личном кабинете на сайте, затем войдите в "
                        "приложение с ним.")


# ---------------------------------------------------------------------------------------------
# Sign-in


class LoginSchema(RussianSchema):
    username = string(required=True, validate=length(320, minimum=1),
                      metadata={"description": "Логин, телефон или e-mail",
                                "example": "+79181234567"})
    password = string(required=True, validate=length(1024, minimum=1),
                      metadata={"description": "Пароль"})
    provider = string(load_default="db",
                      validate=validate.OneOf(["db"], error="Допустимо только: db."),
                      metadata={"description": "Только db", "enum": ["db"]})
    refresh = boolean(load_default=False,
                      metadata={"description": "Выдать и refresh-токен"})
    branch = integer(allow_none=True, load_default=None, validate=positive_id(),
                     metadata={"description": "Филиал (id): обязателен для организаций, "
                                              "не указывается жителями"})
    altcha = string(allow_none=True, load_default=None,
                    validate=length(challenge.MAX_PROOF, minimum=1),
                    metadata={"description": (
                        "Решение проверки «Я не робот» (ALTCHA): нужно, когда ответ 401 на "
                        "прошлую попытку содержал challenge. Перебирайте counter от 0, пока "
                        "PBKDF2 (parameters.algorithm, salt, cost итераций, keyLength байт) от "
                        "пароля nonce + counter (4 байта, big-endian) не начнётся с keyPrefix; "
                        "пришлите base64 от JSON {\"challenge\": <challenge как получен>, "
                        "\"solution\": {\"counter\": …, \"derivedKey\": <hex>}}. Решение "
                        "годится на одну попытку и 10 минут")})


class ChallengeParametersSchema(Schema):
    algorithm = fields.String(required=True, metadata={"example": challenge.ALGORITHM})
    nonce = fields.String(required=True, metadata={"description": "hex"})
    salt = fields.String(required=True, metadata={"description": "hex"})
    cost = fields.Integer(required=True, metadata={"description": "Итераций PBKDF2"})
    keyLength = fields.Integer(required=True, metadata={"description": "Длина ключа, байт"})
    keyPrefix = fields.String(required=True,
                              metadata={"description": "С чего должен начинаться ключ (hex)"})
    expiresAt = fields.Integer(metadata={"description": "До какого времени (Unix) годится"})
    data = fields.Dict(metadata={"description": "work: ожидаемое число попыток"})


class ChallengeSchema(Schema):
    parameters = fields.Nested(ChallengeParametersSchema, required=True)
    signature = fields.String(required=True, metadata={"description": "Подпись сервера"})


class SignInRefusalSchema(Schema):
    message = fields.String(required=True, metadata={"description": "Что не так, для человека"})
    challenge = fields.Nested(ChallengeSchema, metadata={"description": (
        "Проверка «Я не робот» (ALTCHA, PBKDF2/SHA-256): следующая попытка входа должна "
        "прислать её решение в поле altcha. Её просят, когда в учётную запись много раз "
        "пытались войти с неверным паролем, а с этого адреса в неё ещё не входили")})


class TokensSchema(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String()


class SignedOutSchema(Schema):
    message = fields.String(required=True)


SIGNED_OUT = "Вы вышли из приложения: его токены больше не действуют."


class PortalSecurityApi(PortalApiMixin, SecurityApi):
    """FAB's /api/v1/security/login and /refresh with the portal's entrance rules: a branch
    means an organization's user of that branch, no branch a resident; staff use the web.
    Each sign-in is a row (app.services.sessions) whose token every token carries in its
    ``sid`` claim; /logout ends it, and with it every token of that sign-in."""

    openapi_spec_component_schemas = (LoginSchema, TokensSchema, SignedOutSchema,
                                      SignInRefusalSchema)
    login_schema = LoginSchema()

    @expose("/login", methods=["POST"])
    @safe
    def login(self):
        """Sign in and get a JWT (and a refresh token with refresh: true)
        ---
        post:
          summary: Вход по логину и паролю (организации — с филиалом)
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  $ref: '#/components/schemas/LoginSchema'
          responses:
            200:
              description: Токены
              content:
                application/json:
                  schema:
                    $ref: '#/components/schemas/TokensSchema'
            401:
              description: Неверный логин, пароль или филиал, или нужна проверка «Я не робот»
                (тогда в ответе challenge)
              content:
                application/json:
                  schema:
                    $ref: '#/components/schemas/SignInRefusalSchema'
            403:
              description: Нужно сменить пароль на сайте, затем войти с новым
              content:
                application/json:
                  schema:
                    type: object
                    required: [message]
                    properties:
                      message:
                        type: string
            429:
              $ref: '#/components/responses/TooManyRequests'
        """
        try:
            payload = self.json_body(self.login_schema)
        except ValidationError as error:
            return self.response_invalid(error)
        branch_id = payload["branch"]
        if branch_id is None:
            g.signin_check = lambda user: user.kind == "resident"
            failure = SIGNIN_FAILED
        else:
            g.signin_check = lambda user: (user.kind == "business"
                                           and auth_service.serves_branch(user, branch_id))
            failure = BUSINESS_SIGNIN_FAILED
        g.signin_proof = payload["altcha"]
        user = self.appbuilder.sm.auth_user_db(payload["username"], payload["password"])
        if user is None:
            return self.signin_refused(g.pop("signin_refusal", None), failure,
                                       branch_id is None)
        if user.must_change_password:
            return self.response(403, message=MUST_CHANGE_PASSWORD)
        opened = sessions.open_session(
            db.session, user.id, sessions.API, api_lifetime(payload["refresh"]),
            user_agent=request.headers.get("User-Agent"), ip=request.remote_addr)
        claims = {STAMP_CLAIM: password_stamp(user.password), SESSION_CLAIM: opened.token}
        tokens = {API_SECURITY_ACCESS_TOKEN_KEY: create_access_token(
            identity=str(user.id), fresh=True, additional_claims=claims)}
        if payload["refresh"]:
            tokens[API_SECURITY_REFRESH_TOKEN_KEY] = create_refresh_token(
                identity=str(user.id), additional_claims=claims)
        return self.response(200, **tokens)

    def signin_refused(self, refusal, failure: str, resident: bool):
        """A wrong password is a 401; so is a missing «not a robot» proof, with the challenge
        (also after a wrong password, for the next attempt); a hard limit is a 429 with
        Retry-After. A resident is told of the sign-in by code on the site."""
        if refusal is not None and refusal.retry_after:
            hint = f" {CODE_SIGNIN_HINT}" if resident else ""
            response = self.response(429, message=f"{refusal.message}{hint}")
            response.headers["Retry-After"] = str(refusal.retry_after)
            return response
        body = {"message": refusal.message if refusal and refusal.message else failure}
        if refusal is not None and refusal.challenge:
            body["challenge"] = refusal.challenge
        return self.response(401, **body)

    @expose("/refresh", methods=["POST"])
    @jwt_required(refresh=True)
    @safe
    def refresh(self):
        """A new access token for a refresh token, while the user is still active
        ---
        post:
          summary: Новый access-токен по refresh-токену
          responses:
            200:
              description: Новый access-токен
              content:
                application/json:
                  schema:
                    $ref: '#/components/schemas/TokensSchema'
          security:
            - jwt_refresh: []
        """
        user = jwt_user  # by the security manager: None once signed out, deactivated or a
        # new password
        if not user or user.kind not in ("business", "resident") or user.must_change_password:
            return unauthorized(SIGN_IN_AGAIN)
        return self.response(200, **{API_SECURITY_ACCESS_TOKEN_KEY: create_access_token(
            identity=str(user.id), fresh=False,
            additional_claims={STAMP_CLAIM: password_stamp(user.password),
                               SESSION_CLAIM: get_jwt()[SESSION_CLAIM]})})

    @expose("/logout", methods=["POST"])
    @jwt_required()
    @safe
    def sign_out(self):  # not "logout": the browsers' sign-outs are those (Clear-Site-Data)
        """End this sign-in of the app: its access and refresh tokens open nothing after
        ---
        post:
          summary: Выход из приложения (все токены этого входа перестают действовать)
          responses:
            200:
              description: Вход завершён
              content:
                application/json:
                  schema:
                    $ref: '#/components/schemas/SignedOutSchema'
          security:
            - jwt: []
        """
        user = jwt_user  # by the security manager, with the sign-in of the token
        sessions.end(db.session, user.id, user.session_row_id, request.remote_addr,
                     journal=False)
        return self.response(200, message=SIGNED_OUT)
