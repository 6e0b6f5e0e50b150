"""The page's words in English and Russian: verdicts, event types, NXDOMAIN looks, round
statuses, explanations and the page's own text. Domain data (names, labels, addresses,
resolver names) is never translated. The architecture test fails until every word of the
vocabulary has a row here in every language.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

LANGS: Final = ("en", "ru")
DEFAULT: Final = "en"

# key -> (English, Russian); {name} fields are filled by Words.__call__
CATALOG: Final[Mapping[str, tuple[str, str]]] = {
    # the page
    "site": ("nsdi-tracker", "nsdi-tracker"),
    "tagline": (
        "What Russia's national DNS system (NSDI) resolves, and when that changes",
        "Что разрешает национальная система доменных имён (НСДИ) и когда это меняется",
    ),
    "nav.overview": ("Overview", "Обзор"),
    "nav.changes": ("Changes", "Изменения"),
    "nav.resolvers": ("Resolvers", "Резолверы"),
    "nav.feed": ("Atom feed", "Лента Atom"),
    "nav.api": ("JSON API", "JSON API"),
    "lang.other": ("По-русски", "In English"),
    "round.none": ("No round has run yet.", "Ещё не прошло ни одного раунда."),
    "round.last": (
        "Last round #{id}: {status}, {ago} ago",
        "Последний раунд №{id}: {status}, {ago} назад",
    ),
    "round.every": ("rounds are due every {every}", "раунды идут каждые {every}"),
    "round.next": ("next in about {span}", "следующий примерно через {span}"),
    "stale": (
        "The last round was {ago} ago, but rounds are due every {every}: the tracker may be "
        "stopped, and what this page shows may be out of date.",
        "Последний раунд был {ago} назад, а раунды должны идти каждые {every}: трекер, "
        "возможно, остановлен, и страница может показывать устаревшие данные.",
    ),
    "health.ok": ("healthy", "работает"),
    "health.failing": ("failing: {reason}", "сбой: {reason}"),
    "health.published": ("published copy", "опубликованная копия"),
    "headline": ("National headline", "Итог по НСДИ"),
    "headline.count": ("{n} {verdict}", "{verdict}: {n}"),
    "col.domain": ("Domain", "Домен"),
    "col.label": ("Label", "Описание"),
    "col.category": ("Category", "Категория"),
    "col.national": ("National system", "НСДИ"),
    "col.since": ("since", "с"),
    "col.when": ("When", "Когда"),
    "col.change": ("Change", "Изменение"),
    "col.scope": ("Where", "Где"),
    "col.evidence": ("Evidence", "Доказательства"),
    "held": ("held: {resolver} down since {since}", "сохранён: {resolver} недоступен с {since}"),
    "pending": (
        "pending: {verdict} (seen in {n} rounds)",
        "ожидает подтверждения: {verdict} (раундов: {n})",
    ),
    "for": ("for {span}", "уже {span}"),
    "filter.verdict": ("Verdict", "Вердикт"),
    "filter.category": ("Category", "Категория"),
    "filter.search": ("Name contains", "Имя содержит"),
    "filter.any": ("any", "любой"),
    "filter.none": ("(none)", "(без категории)"),
    "filter.show": ("Show", "Показать"),
    "filter.since": ("Since", "С"),
    "filter.until": ("Until", "До"),
    "filter.domain": ("Domain", "Домен"),
    "filter.resolver": ("Resolver", "Резолвер"),
    "filter.type": ("Event types", "Типы событий"),
    "filter.help": (
        "Times: ISO 8601 (2026-02-10, 2026-02-10T12:00Z) or an age (90m, 24h, 7d).",
        "Время: ISO 8601 (2026-02-10, 2026-02-10T12:00Z) или давность (90m, 24h, 7d).",
    ),
    "page.range": ("{first}–{last} of {total}", "{first}–{last} из {total}"),
    "page.prev": ("← previous", "← назад"),
    "page.next": ("next →", "далее →"),
    "page.newer": ("← newer", "← новее"),
    "page.older": ("older →", "старше →"),
    "empty.domains": ("No watched domain matches.", "Ни один домен не подходит."),
    "empty.changes": ("No transition matches.", "Ни одного подходящего изменения."),
    "download.csv": ("Download CSV", "Скачать CSV"),
    "download.json": ("Download JSON", "Скачать JSON"),
    "domain.title": ("{domain}", "{domain}"),
    "domain.timeline": ("Timeline", "Хронология"),
    "domain.timeline.help": (
        "Each row is the national headline or one resolver; colour is the confirmed verdict "
        "from when it was first seen; hatching marks time without a measurement (the "
        "resolver was down, or no round ran).",
        "Каждая строка — итог по НСДИ или один резолвер; цвет — подтверждённый вердикт с "
        "момента, когда его впервые увидели; штриховка — время без измерений (резолвер был "
        "недоступен или раунды не шли).",
    ),
    "domain.transitions": ("Confirmed transitions", "Подтверждённые изменения"),
    "domain.current": ("Now", "Сейчас"),
    "domain.unknown": ("{domain} has never been measured.", "{domain} ещё ни разу не проверялся."),
    "domain.first_seen": ("watched since {when}", "отслеживается с {when}"),
    "domain.unwatched": ("no longer on the watchlist", "больше не в списке наблюдения"),
    "transition.title": ("{domain}: {type} on {scope}", "{domain}: {type} ({scope})"),
    "transition.resolver": ("{scope}: {type}", "{scope}: {type}"),
    "transition.unknown": ("No transition has this id.", "Изменения с таким идентификатором нет."),
    "transition.permalink": ("permalink", "постоянная ссылка"),
    "transition.confirmed": (
        "confirmed {when} after {rounds} rounds; first seen {first}",
        "подтверждено {when} после {rounds} раундов; впервые замечено {first}",
    ),
    "transition.cite": (
        "Cite as: nsdi-tracker, event {id}, {url}",
        "Ссылка для цитирования: nsdi-tracker, событие {id}, {url}",
    ),
    "resolvers.title": ("Resolvers", "Резолверы"),
    "resolvers.help": (
        "Each round asks every resolver the control names first: a resolver that fails them "
        "is down, and its verdicts are held. Plots cover the last {n} rounds.",
        "В каждом раунде резолверам сначала задают контрольные имена: кто их не прошёл, "
        "считается недоступным, и его вердикты сохраняются. Графики — за последние {n} "
        "раундов.",
    ),
    "resolvers.role": ("Role", "Роль"),
    "resolvers.state": ("State", "Состояние"),
    "resolvers.controls": ("Controls passed", "Контроль пройден"),
    "resolvers.answers": ("Usable answers", "Полезные ответы"),
    "resolvers.latency": ("Latency p50 / p90 / p99", "Задержка p50 / p90 / p99"),
    "resolvers.rewrites": ("Rewrites NXDOMAIN", "Подменяет NXDOMAIN"),
    "resolvers.rewrites.help": (
        "answers names that do not exist with addresses",
        "отвечает адресами на несуществующие имена",
    ),
    "plot.controls": ("Controls passed (%)", "Контроль пройден (%)"),
    "plot.answers": ("Usable answers (%)", "Полезные ответы (%)"),
    "plot.p50": ("Latency p50 (ms)", "Задержка p50 (мс)"),
    "plot.p99": ("Latency p99 (ms)", "Задержка p99 (мс)"),
    "yes": ("yes", "да"),
    "no": ("no", "нет"),
    "legend": ("What the verdicts mean", "Что значат вердикты"),
    "feed.title": ("nsdi-tracker: confirmed changes", "nsdi-tracker: подтверждённые изменения"),
    "feed.subtitle": (
        "Domains removed from and restored to Russia's national DNS system, with evidence",
        "Домены, удалённые из национальной системы доменных имён России и возвращённые в неё, "
        "с доказательствами",
    ),
    "not_found": ("Not found", "Не найдено"),
    "bad_request": ("Bad request: {reason}", "Неверный запрос: {reason}"),
    "footer": (
        "Served by nsdi-tracker {version}. Times are UTC.",
        "Страницу отдаёт nsdi-tracker {version}. Время — UTC.",
    ),
    # evidence in words
    "ev.rcode": ("the answer was {rcode}", "ответ: {rcode}"),
    "ev.nx": ("an NXDOMAIN that looked {label}", "NXDOMAIN, похожий на {label}"),
    "ev.addresses": ("addresses {addresses}", "адреса {addresses}"),
    "ev.no_addresses": ("no addresses", "без адресов"),
    "ev.authority": ("authority: {authority}", "раздел AUTHORITY: {authority}"),
    "ev.flags": ("flags {flags}", "флаги {flags}"),
    "ev.reference": (
        "the reference resolvers: {consensus}",
        "эталонные резолверы: {consensus}",
    ),
    "ev.reference_at": (
        "the reference resolvers: {consensus}, at {addresses}",
        "эталонные резолверы: {consensus}, адреса {addresses}",
    ),
    "consensus.exists": ("the name exists", "имя существует"),
    "consensus.nonexistent": ("the name does not exist", "имени не существует"),
    "consensus.unknown": ("no agreement", "нет согласия"),
    # spans of time
    "span.s": ("{n} s", "{n} с"),
    "span.min": ("{n} min", "{n} мин"),
    "span.h": ("{n} h", "{n} ч"),
    "span.d": ("{n} d", "{n} дн."),
    # the vocabulary: verdicts
    "v.present": ("present", "есть"),
    "v.removed": ("removed", "удалён"),
    "v.tampered": ("tampered", "подменён"),
    "v.differs": ("differs", "отличается"),
    "v.unreachable": ("unreachable", "недоступен"),
    "v.absent": ("absent", "не существует"),
    "v.unknown": ("unknown", "неизвестно"),
    "v.partial": ("partial", "частично"),
    "v.new": ("no verdict yet", "вердикта пока нет"),
    "v.up": ("up", "работает"),
    "v.down": ("down", "недоступен"),
    "explain.present": (
        "the national system resolves the name as the reference resolvers do",
        "НСДИ разрешает имя так же, как эталонные резолверы",
    ),
    "explain.removed": (
        "the national system says the name does not exist (NXDOMAIN) while the reference "
        "resolvers resolve it",
        "НСДИ отвечает, что имени нет (NXDOMAIN), а эталонные резолверы его разрешают",
    ),
    "explain.tampered": (
        "the national system answers with addresses the reference resolvers never give "
        "(a block page or a sinkhole)",
        "НСДИ отвечает адресами, которых эталонные резолверы не дают (страница блокировки "
        "или «чёрная дыра»)",
    ),
    "explain.differs": (
        "other addresses than the reference, but plausibly the same service (a CDN)",
        "адреса отличаются от эталонных, но, вероятно, это тот же сервис (CDN)",
    ),
    "explain.unreachable": (
        "no usable answer (timeouts, SERVFAIL, REFUSED)",
        "нет полезного ответа (тайм-ауты, SERVFAIL, REFUSED)",
    ),
    "explain.absent": (
        "the name exists nowhere, the reference resolvers included",
        "имени нет нигде, в том числе у эталонных резолверов",
    ),
    "explain.unknown": (
        "the reference resolvers disagree or cannot be reached",
        "эталонные резолверы расходятся или недоступны",
    ),
    "explain.partial": (
        "the national resolvers disagree with one another",
        "резолверы НСДИ расходятся между собой",
    ),
    # event types
    "t.baseline": ("first verdict", "первый вердикт"),
    "t.removed": ("removed", "удалён"),
    "t.restored": ("restored", "восстановлен"),
    "t.tampered": ("tampered", "подменён"),
    "t.unreachable": ("unreachable", "недоступен"),
    "t.recovered": ("recovered", "снова отвечает"),
    "t.changed": ("changed", "изменился"),
    "t.filtered": ("filtered by an ISP", "фильтруется провайдером"),
    "t.resolver_down": ("resolver down", "резолвер недоступен"),
    "t.resolver_up": ("resolver back up", "резолвер снова работает"),
    # round statuses
    "r.ok": ("ok", "успешно"),
    "r.partial": (
        "partial: a resolver failed its controls",
        "частично: резолвер не прошёл контроль",
    ),
    "r.offline": ("offline: no reference answered", "нет связи: эталонные резолверы не ответили"),
    "r.timeout": ("cut off: it overran its time", "прерван: не уложился во время"),
    # NXDOMAIN looks
    "nx.ordinary": (
        "ordinary (the zone's SOA record in AUTHORITY)",
        "обычный (SOA зоны в AUTHORITY)",
    ),
    "nx.bare": ("bare (no SOA record)", "голый (без записи SOA)"),
    "nx.forged": (
        "forged (no SOA and the AA flag set: injected on the path)",
        "поддельный (без SOA и с флагом AA: вставлен по пути)",
    ),
    "nx.rewritten": (
        "rewritten (the addresses the resolver gives for names that do not exist)",
        "переписанный (адреса, которые резолвер даёт несуществующим именам)",
    ),
    "nx.short.forged": ("forged", "поддельный"),
    "nx.short.rewritten": ("rewritten", "переписанный"),
    # roles
    "role.national": ("national", "НСДИ"),
    "role.reference": ("reference", "эталонный"),
    "role.observed": ("observed", "наблюдаемый"),
}

_FIELD = re.compile(r"\{(\w+)\}")


class Words:
    """The catalog in one language: words("key", field=value)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGS else DEFAULT
        self._i = LANGS.index(self.lang)

    def __call__(self, key: str, **fields: object) -> str:
        text = CATALOG[key][self._i]
        return _FIELD.sub(lambda m: str(fields[m.group(1)]), text) if fields else text

    def verdict(self, verdict: str | None) -> str:
        return self(f"v.{verdict or 'new'}")

    def event(self, type_: str) -> str:
        return self(f"t.{type_}")

    def span(self, seconds: float) -> str:
        """A length of time as people say it, to the largest whole unit: 45 s, 5 min, 3 h."""
        for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
            if seconds >= size:
                return self(f"span.{unit}", n=_number(seconds / size))
        return self("span.s", n=int(max(seconds, 0)))


def _number(x: float) -> str:
    """One decimal under 10 (1.5 h), whole numbers above (36 h)."""
    return f"{x:.1f}".rstrip("0").rstrip(".") if x < 10 else str(round(x))


def negotiate(asked: str | None, accept_language: str | None) -> str:
    """The page's language: `?lang=` when it names one we have, else the best of the
    Accept-Language header (by q-value, then order), else English."""
    if asked in LANGS:
        return asked
    best: tuple[float, int, str] | None = None
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        if lang not in LANGS:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and (best is None or (q, -i) > (best[0], best[1])):
            best = (q, -i, lang)
    return best[2] if best else DEFAULT
