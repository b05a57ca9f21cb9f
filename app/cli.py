"""`flask` commands of the portal: roles, demo data, billing and plugins."""
from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.plugins import plugin_names
from app.views.access import sync_roles

plugins_cli = AppGroup("plugins", help="Плагины портала.")


@plugins_cli.command("list")
def list_plugins() -> None:
    """Print the loaded plugins and the hooks each implements."""
    pm = current_app.extensions["plugins"]
    for name in plugin_names(pm):
        plugin = pm.get_plugin(name)
        hooks = sorted(impl.name for impl in pm.get_hookcallers(plugin) or [])
        click.echo(f"{name}: {', '.join(hooks)}")


roles_cli = AppGroup("roles", help="Роли и права доступа.")


@roles_cli.command("sync")
def sync_roles_command() -> None:
    """Create the roles of the policy and give Admin every permission."""
    names = sync_roles(current_app.appbuilder)
    click.echo(f"Роли синхронизированы: {', '.join(names)}")


demo_cli = AppGroup("demo", help="Демонстрационные данные.")


@demo_cli.command("seed")
@click.option("--accounts", default=300, show_default=True, type=click.IntRange(min=0),
              help="Число лицевых счетов физических лиц (плюс 50 организаций).")
@click.option("--seed", "seed_value", default=2025, show_default=True, type=int,
              help="Зерно генератора: одно зерно — одни и те же данные.")
def demo_seed(accounts: int, seed_value: int) -> None:
    """Load the demo data once, then print the demo logins with fresh passwords."""
    from tqdm import tqdm

    from app.extensions import db
    from app.services import demo, demo_logins

    try:
        with tqdm(total=accounts, unit=" сч.", desc="Лицевые счета", disable=accounts < 5000,
                  file=sys.stderr) as bar:
            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            summary = demo.seed(db.session, accounts=accounts, seed=seed_value,
                                due_day=current_app.config.get("PAYMENT_DUE_DAY", 10),
                                progress=progress)
        click.echo(demo.describe(summary, db.session))
        if summary.loaded or summary.reason == "loaded":
            logins = demo_logins.issue_demo_logins(current_app.appbuilder, db.session)
            click.echo(demo_logins.format_logins(logins))
    except demo.DemoError as exc:
        raise click.ClickException(str(exc)) from exc


billing_cli = AppGroup("billing", help="Расчёт начислений и выставление счетов.")


@billing_cli.command("run")
@click.option("--period", required=True, help="Расчётный месяц, например 2026-10.")
@click.option("--branch", default=None, metavar="КОД",
              help="Только этот филиал (код или номер); по умолчанию все по очереди.")
@click.option("--force", "force_reason", default=None, metavar="ПРИЧИНА",
              help="Рассчитать текущий месяц до конца приёма показаний; причина попадёт в "
                   "журнал аудита.")
def billing_run(period: str, branch: str | None, force_reason: str | None) -> None:
    """Compute the period's charges and issue its invoices, branch by branch, each in its own
    transaction (accounts already billed are skipped: running a period again changes nothing
    and finishes the branches that failed)."""
    from tqdm import tqdm

    from app.extensions import db
    from app.services import billing, billing_runs

    bars: dict[int, tqdm] = {}

    def progress(one, done: int, total: int) -> None:
        bar = bars.get(one.id)
        if bar is None:
            bar = bars[one.id] = tqdm(total=total, unit=" шаг", file=sys.stderr,
                                      desc=f"{one.code} {month:%m.%Y}")
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    try:
        month = billing.parse_period(period)
        outcomes = billing_runs.run_branches(db.session, month, current_app.config,
                                             force_reason=force_reason, branch=branch,
                                             progress=progress)
    except billing.BillingError as exc:
        raise click.ClickException(str(exc)) from exc
    for bar in bars.values():
        bar.close()
    results = [o.result for o in outcomes if o.result is not None]
    for outcome in outcomes:
        line = (billing_runs.summary(outcome.result) if outcome.result
                else f"ошибка: {outcome.error}")
        click.echo(f"{outcome.branch.name}: {line}")
    click.echo(f"Период {month:%m.%Y}: лицевых счетов {sum(r.accounts for r in results)}, "
               f"строк начислений {sum(r.charges for r in results)}, "
               f"счетов {sum(r.invoices for r in results)}.")
    failed = [o.branch.code for o in outcomes if o.result is None]
    if failed:
        raise click.ClickException(
            f"Не рассчитаны филиалы: {', '.join(failed)}. Исправьте причину и запустите "
            f"расчёт снова (можно только для них: --branch КОД).")


notices_cli = AppGroup("notices", help="Уведомления о событиях.")


def _notice_events() -> list[str]:
    from app.services.notice_events import SCHEDULED

    return list(SCHEDULED)


@notices_cli.command("send")
@click.argument("event", type=click.Choice(_notice_events()))
@click.option("--date", "day", default=None, help="День, за который отправить (ГГГГ-ММ-ДД); "
              "по умолчанию сегодня.")
def notices_send(event: str, day: str | None) -> None:
    """Send the event's notices that are due and not sent yet (what Celery beat runs daily;
    running it again sends nothing twice)."""
    import datetime as dt

    from app.extensions import db
    from app.services import notice_events

    try:
        today = dt.date.fromisoformat(day) if day else None
    except ValueError:
        raise click.BadParameter("дата указывается как ГГГГ-ММ-ДД, например 2026-10-22.",
                                 param_hint="--date") from None
    sent = notice_events.run_scheduled(db.session, event, today)
    click.echo(f"Уведомлений «{event}» отправлено: {sent}.")


sessions_cli = AppGroup("sessions", help="Входы пользователей (сеансы).")


@sessions_cli.command("prune")
def sessions_prune() -> None:
    """Delete the sign-ins that ended or expired (what Celery beat runs daily)."""
    from app.extensions import db
    from app.services import sessions

    click.echo(f"Удалено завершённых входов: {sessions.prune(db.session)}.")


autopay_cli = AppGroup("autopay", help="Автоплатежи с сохранённых карт.")


@autopay_cli.command("run")
@click.option("--date", "day", default=None, help="День, за который списать (ГГГГ-ММ-ДД); "
              "по умолчанию сегодня.")
def autopay_run(day: str | None) -> None:
    """Charge the bills autopay is due to pay (what Celery beat runs daily; running it again
    charges nothing twice)."""
    import datetime as dt

    from tqdm import tqdm

    from app.extensions import db
    from app.services import autopay, periods
    from app.services.russian import money

    try:
        today = dt.date.fromisoformat(day) if day else periods.local_today(current_app.config)
    except ValueError:
        raise click.BadParameter("дата указывается как ГГГГ-ММ-ДД, например 2026-11-09.",
                                 param_hint="--date") from None
    with tqdm(total=0, unit=" сч.", desc="Автоплатежи", file=sys.stderr) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        result = autopay.run(db.session, today, progress=progress)
    click.echo(f"Автоплатежи за {today:%d.%m.%Y}: списано {result.charged} на "
               f"{money(result.amount)} руб., отказов {result.declined}, без ответа платёжной "
               f"системы {result.failed}, выключено {result.turned_off}.")


def init_app(app: Flask) -> None:
    app.cli.add_command(plugins_cli)
    app.cli.add_command(roles_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(billing_cli)
    app.cli.add_command(notices_cli)
    app.cli.add_command(sessions_cli)
    app.cli.add_command(autopay_cli)
