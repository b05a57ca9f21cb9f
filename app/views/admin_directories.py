"""Back-office directories: branches, tariff groups, tariffs and consumption ranges."""
from __future__ import annotations

from flask_appbuilder.models.sqla.interface import SQLAInterface

from app import models as m
from app.views.admin_common import NOT_NEGATIVE, POSITIVE, RANGES, ZONE_SCHEMES, ZONES, labels
from app.views.base import DirectoryModelView
from app.views.guards import FitsColumn


class BranchView(DirectoryModelView):
    """The supplier's branches: every role sees the directory, administrators edit it."""

    datamodel = SQLAInterface(m.Branch)
    list_title, show_title = "Филиалы", "Филиал"
    add_title, edit_title = "Новый филиал", "Изменение филиала"
    label_columns = labels(code="Код филиала", name="Наименование", city="Город")
    list_columns = ["name", "code", "city", "phone"]
    show_columns = add_columns = edit_columns = ["name", "code", "city", "address", "phone"]
    search_columns = ["name", "code", "city"]
    order_columns = ["name", "code", "city"]
    base_order = ("name", "asc")
    description_columns = {"code": "Латиницей, без пробелов: используется в номерах документов"}


class TariffGroupView(DirectoryModelView):
    """Tariff groups of consumers (городское, сельское население...)."""

    datamodel = SQLAInterface(m.TariffGroup)
    list_title, show_title = "Тарифные группы", "Тарифная группа"
    add_title, edit_title = "Новая тарифная группа", "Изменение тарифной группы"
    label_columns = labels(code="Код группы", name="Наименование")
    list_columns = show_columns = add_columns = edit_columns = ["name", "code"]
    search_columns = order_columns = ["name", "code"]
    base_order = ("name", "asc")


class TariffView(DirectoryModelView):
    """Rates by group, zone scheme, zone and consumption range; finance maintains them."""

    datamodel = SQLAInterface(m.Tariff)
    list_title, show_title = "Тарифы", "Тариф"
    add_title, edit_title = "Новый тариф", "Изменение тарифа"
    label_columns = labels(zones="Тарифность прибора учёта", rate="Ставка, руб./кВт·ч")
    list_columns = ["tariff_group", "zones", "zone", "range_no", "rate", "effective_from",
                    "effective_to"]
    show_columns = add_columns = edit_columns = list_columns
    search_columns = ["tariff_group", "zones", "zone", "range_no", "effective_from",
                      "effective_to"]
    order_columns = ["zones", "zone", "range_no", "rate", "effective_from", "effective_to"]
    base_order = ("effective_from", "desc")
    choices_columns = {"zones": ZONE_SCHEMES, "zone": ZONES, "range_no": RANGES}
    choices_coerce = {"zones": int, "range_no": int}
    validators_columns = {"rate": [FitsColumn(m.Tariff.rate), POSITIVE]}
    description_columns = {
        "rate": "Рублей за кВт·ч, с НДС",
        "effective_to": "Пусто — тариф действует до отмены",
    }


class ConsumptionRangeView(DirectoryModelView):
    """Monthly upper limits of the consumption ranges, by tariff group and season."""

    datamodel = SQLAInterface(m.ConsumptionRange)
    list_title, show_title = "Диапазоны потребления", "Диапазон потребления"
    add_title, edit_title = "Новый диапазон потребления", "Изменение диапазона потребления"
    label_columns = labels(season="Сезон", range_no="Диапазон",
                           upper_kwh="Верхняя граница, кВт·ч в месяц")
    list_columns = ["tariff_group", "season", "range_no", "upper_kwh", "effective_from",
                    "effective_to"]
    show_columns = add_columns = edit_columns = list_columns
    search_columns = ["tariff_group", "season", "range_no", "effective_from"]
    order_columns = ["season", "range_no", "upper_kwh", "effective_from", "effective_to"]
    base_order = ("effective_from", "desc")
    choices_columns = {"season": m.Season.labels, "range_no": RANGES}
    choices_coerce = {"range_no": int}
    validators_columns = {"upper_kwh": [FitsColumn(m.ConsumptionRange.upper_kwh), NOT_NEGATIVE]}
    description_columns = {
        "upper_kwh": "Пусто — последний диапазон, без верхней границы",
        "effective_to": "Пусто — действует до отмены",
    }
