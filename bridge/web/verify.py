"""The bridge's own consent page for signed links, and the page Persona redirects back to.

Server-rendered, works without JavaScript. The decision never comes from the redirect's query
string: only webhooks change state.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request

from bridge.kyc import link_tokens
from bridge.consent import onboarding
from bridge.config import CONSENT_BOXES
from bridge.sinks.errors import SinkError
from bridge.web.common import runtime
from bridge.web.limits import limiter, link_key, per_ip, per_link
from bridge.web.onboarding import start

bp = Blueprint("verify", __name__, url_prefix="/verify", template_folder="templates", static_folder="static",
               static_url_path="/static")


def _page(template: str, status: int = 200, **context):  # type: ignore[no-untyped-def]
    return render_template(template, consent=runtime().config.consent, **context), status, {
        "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'self'; form-action 'self' https:",
    }


def _link_problem(exc: link_tokens.LinkTokenError):  # type: ignore[no-untyped-def]
    return _page("verify/problem.html", 410 if exc.expired else 400,
                 title="This link has expired" if exc.expired else "This link is not valid",
                 message="Ask for a new verification link, or contact us if the problem persists.")


@bp.get("/done")
@limiter.limit(per_ip)
def done():  # type: ignore[no-untyped-def]
    return _page("verify/done.html")


@bp.route("/<token>", methods=["GET", "POST"])
@limiter.limit(per_ip)
@limiter.limit(per_link, key_func=link_key)
def consent_page(token: str):  # type: ignore[no-untyped-def]
    rt = runtime()
    try:
        target = onboarding.resolve_link(rt.sessions, rt.config, secret_key=rt.settings.secret_key, token=token,
                                         now=rt.clock())
    except link_tokens.LinkTokenError as exc:
        return _link_problem(exc)
    user_type = rt.config.user_types[target.user_type]
    if request.method == "GET":
        return _page("verify/consent.html", user_type=user_type, missing=[], first_name=target.first_name)
    answers = onboarding.ConsentAnswers(*(request.form.get(box) == "yes" for box in CONSENT_BOXES),
                                        text_version=request.form.get("text_version") or None)
    missing = onboarding.missing_consent(answers)
    if missing:
        return _page("verify/consent.html", 422, user_type=user_type, missing=missing, first_name=target.first_name)
    try:
        result = start(onboarding.SessionRequest(
            email=target.email, user_type=target.user_type, first_name=target.first_name, consent=answers,
            ip=request.remote_addr, user_agent=request.user_agent.string, source="link"))
    except onboarding.AttemptsExhausted:
        return _page("verify/problem.html", 409, title="We need to review your verification",
                     message="You have used all verification attempts. Our team will review your case and "
                             "contact you.")
    except onboarding.OnboardingError:
        return _page("verify/consent.html", 422, user_type=user_type, missing=[], first_name=target.first_name,
                     stale_text=True)
    except SinkError:
        return _page("verify/problem.html", 503, title="Verification is unavailable right now",
                     message="Please try again in a few minutes.")
    return redirect(result.hosted_url, code=303)
