"""Push notices' endpoints for the page script (app/static/js/push.js) and the list of devices.

Each audience has its own view under its own permission, so that the role policy stays the
one rule of who may do what: residents under the profile's «Уведомления» (/cabinet/push/...,
the devices listed on /cabinet/profile/notifications), organizations under their cabinet
(/business/notifications, a page of their own). Both take a browser's
``PushSubscription.toJSON()`` as a JSON body, with the session cookie and the X-CSRFToken
header, and act only on the signed-in user's devices; the rules are app.services.push."""
from __future__ import annotations

from flask import current_app, flash, jsonify, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_login import current_user

from app.extensions import db, reads_only
from app.services import push as push_service
from app.views.cabinet import entrance

NOT_YOURS = "Это устройство не получает уведомления из вашего кабинета."
DEVICE_OFF = "Уведомления на устройстве «{}» отключены."
DEVICE_ON = "Push-уведомления включены на этом устройстве («{}»)."


def page_context(device_off_endpoint: str, urls: dict[str, str]) -> dict:
    """What the device section (cabinet/profile_push.html) shows: the user's devices, the
    endpoints for push.js and whether push works at all here."""
    return {"devices": push_service.devices(db.session, current_user.id),
            "push_available": push_service.available(), "push_urls": urls,
            "device_off_endpoint": device_off_endpoint}


class _PushEndpoints:
    """The endpoints both audiences share; ``page`` is where the device list is."""

    page = ""

    def _production(self) -> bool:
        return bool(current_app.config.get("PRODUCTION"))

    def _key(self):
        if not push_service.available():
            return jsonify(message=push_service.UNAVAILABLE), 503
        return jsonify(publicKey=push_service.public_key())

    def _subscribe(self):
        if not push_service.available():
            return jsonify(message=push_service.UNAVAILABLE), 503
        try:
            row = push_service.subscribe(db.session, current_user.id,
                                         request.get_json(silent=True),
                                         request.headers.get("User-Agent"),
                                         self._production(), request.remote_addr)
        except push_service.PushError as exc:
            return jsonify(message=str(exc)), 400
        flash(DEVICE_ON.format(row.device), "success")
        return jsonify(id=row.id, device=row.device)

    def _unsubscribe(self):
        try:
            removed = push_service.unsubscribe(db.session, current_user.id,
                                               request.get_json(silent=True),
                                               self._production(), request.remote_addr)
        except push_service.PushError as exc:
            return jsonify(message=str(exc)), 400
        if not removed:
            return jsonify(message=NOT_YOURS), 404
        return jsonify(removed=True)

    def _off(self, subscription_id: int):
        """The «Отключить» of one device in the list (a plain form)."""
        device = push_service.remove_device(db.session, current_user.id, subscription_id,
                                            request.remote_addr)
        if device is None:
            flash(NOT_YOURS, "danger")
        else:
            flash(DEVICE_OFF.format(device), "success")
        return redirect(url_for(self.page))


class ResidentPushView(_PushEndpoints, BaseView):
    """A resident's devices: allowed to whoever may set their notices in the profile."""

    route_base = "/cabinet/push"
    class_permission_name = "ProfileView"
    method_permission_name = {name: "notifications"
                              for name in ("key", "subscribe", "unsubscribe", "off")}
    page = "ProfileView.notifications"

    @expose("/key")
    @entrance("ResidentAuthView.signin")
    @has_access
    @reads_only
    def key(self):
        return self._key()

    @expose("/subscribe", methods=["POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def subscribe(self):
        return self._subscribe()

    @expose("/unsubscribe", methods=["POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def unsubscribe(self):
        return self._unsubscribe()

    @expose("/devices/<int:subscription_id>/off", methods=["POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def off(self, subscription_id: int):
        return self._off(subscription_id)


class BusinessPushView(_PushEndpoints, BaseView):
    """An organization user's devices («акт сверки готов»): allowed to whoever may open the
    organization's cabinet."""

    route_base = "/business/notifications"
    default_view = "index"
    class_permission_name = "BusinessView"
    method_permission_name = {name: "home"
                              for name in ("index", "key", "subscribe", "unsubscribe", "off")}
    page = "BusinessPushView.index"

    @expose("/")
    @entrance("BusinessAuthView.signin")
    @has_access
    @reads_only
    def index(self):
        return self.render_template(
            "business/notifications.html", title="Уведомления",
            **page_context("BusinessPushView.off", urls_for("BusinessPushView")))

    @expose("/key")
    @entrance("BusinessAuthView.signin")
    @has_access
    @reads_only
    def key(self):
        return self._key()

    @expose("/subscribe", methods=["POST"])
    @entrance("BusinessAuthView.signin")
    @has_access
    def subscribe(self):
        return self._subscribe()

    @expose("/unsubscribe", methods=["POST"])
    @entrance("BusinessAuthView.signin")
    @has_access
    def unsubscribe(self):
        return self._unsubscribe()

    @expose("/devices/<int:subscription_id>/off", methods=["POST"])
    @entrance("BusinessAuthView.signin")
    @has_access
    def off(self, subscription_id: int):
        return self._off(subscription_id)


def urls_for(view: str) -> dict[str, str]:
    return {"key": url_for(f"{view}.key"), "subscribe": url_for(f"{view}.subscribe"),
            "unsubscribe": url_for(f"{view}.unsubscribe")}


def register(appbuilder) -> None:
    appbuilder.add_view_no_menu(ResidentPushView)
    appbuilder.add_view_no_menu(BusinessPushView)
