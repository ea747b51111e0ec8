"""The team page (owner only): members with their roles, invitations, role changes, removal.

Every view needs manage_team (app/roles.py): another role gets the 403 error page and
nothing changes. The rules are app/team.py's; a refusal is shown beside its form (the page
answers with the refusal's status), a success as a message in the form's card, after a
redirect back to it. The one-time link of a new invitation is shown once, in that message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import AnyOf, InputRequired, Length

from .. import team
from ..choices import ROLES
from ..errors import AppError
from ..forms import choices
from ..models import Partner
from ..roles import ROLE_LABELS, requires
from .dashboard import current_partner

T = TypeVar("T")

bp = Blueprint("team", __name__)

ROLE_CHOICES = [(role, role.title()) for role in ROLES]
# The flash categories of this page, each shown in its own card (templates/base.html
# leaves them out of the page's top messages).
INVITE_MESSAGE, LINK_MESSAGE, MEMBER_MESSAGE = "team-invite", "team-link", "team-members"
INVITATION_MESSAGE = "team-invitations"


class InviteForm(FlaskForm):
    """An address and the role it will have."""

    email = StringField(
        "Email address",
        validators=[InputRequired(message="enter an email address"), Length(max=254)],
    )
    role = SelectField(
        "Role",
        choices=choices(ROLE_CHOICES),
        default="analyst",
        validators=[AnyOf(ROLES, message="choose owner, admin or analyst")],
        validate_choice=False,
    )


class RoleForm(FlaskForm):
    """A member's new role (one form per member: its fields are prefixed by the member)."""

    role = SelectField(
        "Role",
        choices=choices(ROLE_CHOICES),
        validators=[AnyOf(ROLES, message="choose owner, admin or analyst")],
        validate_choice=False,
    )


class ConfirmForm(FlaskForm):
    """A destructive action's form: sent from its confirmation (the "yes" it carries)."""

    confirm = HiddenField(
        default="yes", validators=[AnyOf(["yes"], message="confirm the action first")]
    )


def role_form(user_id: int, role: str | None = None) -> RoleForm:
    """Return the role form of one member (its field named member-<id>-role)."""
    if role is None:
        return RoleForm(prefix=f"member-{user_id}-")
    return RoleForm(formdata=None, prefix=f"member-{user_id}-", role=role)


def _page(
    partner: Partner,
    invite_form: InviteForm | None = None,
    failed_role: tuple[int, RoleForm] | None = None,
    refusals: dict[str, str] | None = None,
) -> str:
    members = team.members(partner)
    forms = {m.id: role_form(m.id, m.role) for m in members}
    if failed_role is not None:
        forms[failed_role[0]] = failed_role[1]
    for member in members:
        forms[member.id].role.label.text = f"Role of {member.email}"
    return render_template(
        "team/index.html",
        partner=partner,
        members=members,
        role_forms=forms,
        invitations=team.pending_invitations(partner),
        invite_form=invite_form or InviteForm(formdata=None),
        confirm_form=ConfirmForm(formdata=None),
        refusals=refusals or {},
        role_labels=ROLE_LABELS,
        days=team.INVITATION_DAYS,
    )


def _back(anchor: str) -> Any:
    return redirect(url_for("dashboard.team.index") + "#" + anchor)


@bp.get("/team")
@requires("manage_team")
def index() -> str:
    """Show the members, the pending invitations and the invite form."""
    return _page(current_partner())


@bp.post("/team/invitations")
@requires("manage_team")
def invite() -> Any:
    """Invite an address with a role; show its one-time link once."""
    partner = current_partner()
    form = InviteForm()
    status = 400
    if form.validate_on_submit():
        try:
            invitation, link = team.invite(
                partner,
                form.email.data or "",
                form.role.data or "",
                lambda token: url_for("invitations.accept", token=token, _external=True),
            )
        except AppError as exc:
            status = exc.status
            target = form.role if exc.field == "role" else form.email
            target.errors = [*target.errors, exc.message]
        else:
            flash(
                f"Invitation for {invitation.email} as {invitation.role} created. Send this "
                f"link to them; it works once, for {team.INVITATION_DAYS} days, and is shown "
                "only now.",
                INVITE_MESSAGE,
            )
            flash(link, LINK_MESSAGE)
            return _back("invite")
    return _page(partner, invite_form=form), status


def _once_confirmed(partner: Partner, row: str, action: Callable[[], T]) -> tuple[T | None, Any]:
    """Run action once its confirmation box is ticked; return (its result, None), or
    (None, the page with the refusal beside the row: "Confirm first." or the action's
    error, and its status)."""
    if not ConfirmForm().validate_on_submit():
        return None, (_page(partner, refusals={row: "Confirm first."}), 400)
    try:
        return action(), None
    except AppError as exc:
        return None, (_page(partner, refusals={row: exc.message}), exc.status)


@bp.post("/team/invitations/<invitation_id>/revoke")
@requires("manage_team")
def revoke(invitation_id: str) -> Any:
    """Revoke a pending invitation (after its confirmation): its link stops working."""
    partner = current_partner()
    invitation = team.get_invitation(partner, invitation_id)
    _, refused = _once_confirmed(
        partner, f"invitation-{invitation.id}", lambda: team.revoke(partner, invitation.id)
    )
    if refused is not None:
        return refused
    flash(
        f"Invitation for {invitation.email} revoked: its link no longer works.", INVITATION_MESSAGE
    )
    return _back("invitations")


@bp.post("/team/members/<int:user_id>/role")
@requires("manage_team")
def change_role(user_id: int) -> Any:
    """Give a member another role; the last owner keeps theirs (said beside the form)."""
    partner = current_partner()
    member = team.get_member(partner, user_id)
    form = role_form(member.id)
    status = 400
    if form.validate_on_submit():
        before = member.role
        try:
            team.change_role(partner, member.id, form.role.data or "")
        except AppError as exc:
            status = exc.status
            form.role.errors = [*form.role.errors, exc.message]
        else:
            if member.id == current_user.id and not can_stay(member.role):
                flash(f"You are now {member.role}: an owner manages the team.", "success")
                return redirect(url_for("dashboard.overview.index"))
            if before != member.role:
                flash(f"{member.email} is now {member.role}.", MEMBER_MESSAGE)
            return _back("members")
    return _page(partner, failed_role=(member.id, form)), status


def can_stay(role: str) -> bool:
    """Tell whether a member with role may still open this page."""
    return role == "owner"


@bp.post("/team/members/<int:user_id>/remove")
@requires("manage_team")
def remove(user_id: int) -> Any:
    """Remove a member (after its confirmation): their sessions end at once."""
    partner = current_partner()
    member = team.get_member(partner, user_id)
    yourself = member.id == current_user.id
    email, refused = _once_confirmed(
        partner, f"member-{member.id}", lambda: team.remove(partner, member.id)
    )
    if refused is not None:
        return refused
    if yourself:
        return redirect(url_for("auth.login"))
    flash(f"{email} was removed from the team; their sessions have ended.", MEMBER_MESSAGE)
    return _back("members")
