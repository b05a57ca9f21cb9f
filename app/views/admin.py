"""Back-office views over the domain tables (staff, finance and administrators)."""
from __future__ import annotations

from flask_appbuilder.models.sqla.interface import SQLAInterface

from app import models as m
from app.views.base import PortalModelView


class BranchView(PortalModelView):
    datamodel = SQLAInterface(m.Branch)
    list_columns = ["code", "name", "city", "phone"]


class OrganizationView(PortalModelView):
    datamodel = SQLAInterface(m.Organization)
    list_columns = ["name", "inn", "kpp", "branch"]


class ContractView(PortalModelView):
    datamodel = SQLAInterface(m.Contract)
    list_columns = ["number", "organization", "person_name", "branch", "valid_from", "status"]


class PremisesView(PortalModelView):
    datamodel = SQLAInterface(m.Premises)
    list_columns = ["locality", "street", "house", "flat", "branch"]


class PersonalAccountView(PortalModelView):
    datamodel = SQLAInterface(m.PersonalAccount)
    list_columns = ["number", "holder_name", "premises", "branch", "tariff_group", "status"]


class AccountBindingView(PortalModelView):
    datamodel = SQLAInterface(m.AccountBinding)
    list_columns = ["user", "account", "bound_at", "method"]


class MeterView(PortalModelView):
    datamodel = SQLAInterface(m.Meter)
    list_columns = ["serial", "account", "zones", "digit_capacity", "verification_due"]


class ReadingView(PortalModelView):
    datamodel = SQLAInterface(m.Reading)
    list_columns = ["meter", "period", "t1", "t2", "t3", "source", "status", "submitted_at"]


class TariffGroupView(PortalModelView):
    datamodel = SQLAInterface(m.TariffGroup)
    list_columns = ["code", "name"]


class TariffView(PortalModelView):
    datamodel = SQLAInterface(m.Tariff)
    list_columns = ["tariff_group", "zones", "zone", "range_no", "rate", "effective_from",
                    "effective_to"]


class ConsumptionRangeView(PortalModelView):
    datamodel = SQLAInterface(m.ConsumptionRange)
    list_columns = ["tariff_group", "season", "range_no", "upper_kwh", "effective_from"]


class ChargeView(PortalModelView):
    datamodel = SQLAInterface(m.Charge)
    list_columns = ["account", "period", "zone", "range_no", "kwh", "rate", "amount", "kind"]


class InvoiceView(PortalModelView):
    datamodel = SQLAInterface(m.Invoice)
    list_columns = ["number", "account", "period", "opening_balance", "charged", "paid",
                    "amount_due", "due_date"]


class PaymentView(PortalModelView):
    datamodel = SQLAInterface(m.Payment)
    list_columns = ["account", "amount", "method", "gateway", "status", "paid_at"]


class ContractApplicationView(PortalModelView):
    datamodel = SQLAInterface(m.ContractApplication)
    list_columns = ["applicant_name", "address", "branch", "status", "created_at"]


class FeedbackView(PortalModelView):
    datamodel = SQLAInterface(m.Feedback)
    list_columns = ["topic", "user", "branch", "status", "created_at"]


class MailingView(PortalModelView):
    datamodel = SQLAInterface(m.Mailing)
    list_columns = ["subject", "branch", "status", "total", "sent", "failed", "created_at"]


class ReconciliationActView(PortalModelView):
    datamodel = SQLAInterface(m.ReconciliationAct)
    list_columns = ["organization", "contract", "date_from", "date_to", "status",
                    "requested_at"]


class AuditEventView(PortalModelView):
    datamodel = SQLAInterface(m.AuditEvent)
    base_permissions = ["can_list", "can_show"]
    list_columns = ["at", "action", "actor", "object_type", "object_id", "ip"]
    base_order = ("at", "desc")
