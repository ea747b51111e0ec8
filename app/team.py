"""A partner's team: members with roles, invitations by one-time link, role changes, removal.

The team page (app/views/team.py), the invitation page (app/views/invitations.py) and the
CLI change members only through here (and app/auth.py for the user rows themselves); every
change is audited in its own transaction (app/audit.py).

Invitations: a random token makes the link; only its SHA-256 digest is stored
(Invitation.token_hash). A link is valid for INVITATION_DAYS and used at most once. An
address that already belongs to any user, of this partner or another, is invited exactly
like any other address (the inviter learns nothing), but its invitation cannot be
accepted: the link then gives the same answer as an expired, revoked, used or unknown one.

The last owner of a partner can be neither removed nor demoted: the owners' rows are
locked (FOR UPDATE on PostgreSQL; SQLite's write lock covers it) before they are counted,
so two owners demoting each other at the same moment cannot both succeed.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import ScalarResult, func, select
from sqlalchemy.exc import IntegrityError

from . import audit, auth
from .database import write_transaction
from .errors import AppError
from .extensions import db
from .models import Invitation, Partner, User
from .timeutil import utcnow

INVITATION_DAYS = 7
INVITATION_LIFETIME = timedelta(days=INVITATION_DAYS)
# The one answer for a link that cannot be used, whatever the reason (expired, revoked,
# already used, unknown, or an address that already has a login): nothing leaks.
INVALID_LINK = (
    "This invitation link cannot be used: it may have expired, been revoked or been used "
    "already. Ask the person who invited you for a new one."
)
LAST_OWNER = "{email} is the team's last owner: make another member an owner first"


def token_digest(token: str) -> str:
    """Return the stored digest of an invitation token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def invitation_created(invitation: Invitation, link: str) -> None:
    """Called once after an invitation is committed, with its one-time link.

    The page shows the link to the inviter once, and the link is mailed to the invited
    address once (app/mail.py: the message waits in the database's mail outbox until the
    worker sends it or writes it to instance/outbox/; the invitation itself keeps only the
    token's digest).
    """
    from . import mail

    partner = db.session.get(Partner, invitation.partner_id)
    with write_transaction():
        mail.send_invitation(invitation.email, link, partner.name if partner else "")


def invite(
    partner: Partner, email: str, role: str, link_for: Callable[[str], str]
) -> tuple[Invitation, str]:
    """Invite email to the team with role; return the invitation and its one-time link.

    link_for turns the token into the link (the page builds an absolute URL). An earlier
    pending invitation of the same address is revoked: one live link per address.
    """
    email = auth.check_email(email)
    auth.check_role(role)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with write_transaction():
        for older in _pending(partner, email):
            older.revoked_at = now
            audit.record(
                partner.id,
                "invitation",
                "revoke",
                object_id=older.id,
                label=older.email,
                before={"status": "pending"},
                after={"status": "revoked", "reason": "replaced by a new invitation"},
            )
        invitation = Invitation(
            partner_id=partner.id,
            email=email,
            role=role,
            token_hash=token_digest(token),
            invited_by=audit.actor()[1][:254],
            created_at=now,
            expires_at=now + INVITATION_LIFETIME,
        )
        db.session.add(invitation)
        db.session.flush()
        audit.record(
            partner.id,
            "invitation",
            "invite",
            object_id=invitation.id,
            label=email,
            after={"email": email, "role": role, "expiresAt": invitation.expires_at},
        )
    link = link_for(token)
    invitation_created(invitation, link)
    return invitation, link


def _pending(partner: Partner, email: str) -> ScalarResult[Invitation]:
    """Return the partner's invitations of email not yet accepted or revoked."""
    return db.session.scalars(
        select(Invitation).where(
            Invitation.partner_id == partner.id,
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
    )


def pending_invitations(partner: Partner) -> list[Invitation]:
    """Return the partner's invitations still waiting (not accepted, revoked or expired),
    newest first."""
    return list(
        db.session.scalars(
            select(Invitation)
            .where(
                Invitation.partner_id == partner.id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > utcnow(),
            )
            .order_by(Invitation.created_at.desc(), Invitation.email)
        )
    )


def members(partner: Partner) -> list[User]:
    """Return the partner's members: owners first, then admins, then analysts, by email."""
    order = {"owner": 0, "admin": 1, "analyst": 2}
    users = db.session.scalars(select(User).where(User.partner_id == partner.id)).all()
    return sorted(users, key=lambda u: (order.get(u.role, 9), u.email))


def usable_invitation(token: str) -> Invitation | None:
    """Return the invitation of a link when it can still be accepted, else None.

    None alike for an unknown token, an expired, revoked or accepted invitation, and an
    address that already has a login (of any partner).
    """
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    invitation = db.session.execute(
        select(Invitation).where(Invitation.token_hash == token_digest(token))
    ).scalar_one_or_none()
    if (
        invitation is None
        or invitation.accepted_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at <= utcnow()
    ):
        return None
    taken = db.session.execute(select(User.id).where(User.email == invitation.email)).first()
    return None if taken else invitation


def accept(token: str, password: str) -> User:
    """Accept an invitation: create its user with its role and this password; audited.

    Any link that cannot be used raises the one InvalidInvitation answer (404); a short
    password raises a 400 naming the password field, and the link stays usable.
    """
    if usable_invitation(token) is None:
        raise invalid_link()
    auth.validate_password(password)
    hashed = auth.hash_password(password)  # before the write lock: argon2 takes a moment
    try:
        with write_transaction():
            # Read again under the write lock: two tabs sending the form at once make one user.
            invitation = usable_invitation(token)
            if invitation is None:
                raise invalid_link()
            partner = db.session.get(Partner, invitation.partner_id)
            assert partner is not None
            user = auth.new_user(partner, invitation.email, hashed, invitation.role)
            invitation.accepted_at = utcnow()
            audit.record(
                partner.id,
                "member",
                "accept",
                object_id=user.id,
                label=user.email,
                after={"email": user.email, "role": user.role, "invitation": invitation.id},
                by=("user", user.email),
            )
    except IntegrityError as exc:  # the address got a login meanwhile (PostgreSQL race)
        raise invalid_link() from exc
    return user


def invalid_link() -> AppError:
    """Return the one answer for an invitation link that cannot be used."""
    return AppError("NotFound", INVALID_LINK, {"field": "token"})


def get_member(partner: Partner, user_id: int) -> User:
    """Return the partner's member; another partner's id answers NotFound too."""
    user = db.session.get(User, user_id) if 0 < user_id < 2**63 else None
    if user is None or user.partner_id != partner.id:
        raise AppError("NotFound", "member not found", {"field": "member"})
    return user


def get_invitation(partner: Partner, invitation_id: str) -> Invitation:
    """Return the partner's invitation; another partner's id answers NotFound too."""
    invitation = db.session.get(Invitation, invitation_id) if len(invitation_id) <= 36 else None
    if invitation is None or invitation.partner_id != partner.id:
        raise AppError("NotFound", "invitation not found", {"field": "invitation"})
    return invitation


def revoke(partner: Partner, invitation_id: str) -> Invitation:
    """Revoke a pending invitation: its link stops working at once; audited."""
    with write_transaction():
        invitation = get_invitation(partner, invitation_id)
        if invitation.accepted_at is not None:
            raise AppError(
                "Conflict", "this invitation was accepted already", {"field": "invitation"}
            )
        if invitation.revoked_at is None:
            invitation.revoked_at = utcnow()
            audit.record(
                partner.id,
                "invitation",
                "revoke",
                object_id=invitation.id,
                label=invitation.email,
                before={"status": "pending"},
                after={"status": "revoked"},
            )
    return invitation


def _other_owners(partner: Partner, user: User) -> int:
    """Count the partner's owners other than user, locking the owners' rows first."""
    owners = db.session.scalars(
        select(User.id).where(User.partner_id == partner.id, User.role == "owner").with_for_update()
    ).all()
    return sum(1 for owner_id in owners if owner_id != user.id)


def change_role(partner: Partner, user_id: int, role: str) -> User:
    """Give a member another role; the last owner cannot be demoted; audited."""
    auth.check_role(role)
    with write_transaction():
        user = get_member(partner, user_id)
        if user.role == role:
            return user
        if user.role == "owner" and _other_owners(partner, user) == 0:
            raise AppError("Conflict", LAST_OWNER.format(email=user.email), {"field": "role"})
        before = user.role
        user.role = role
        audit.record(
            partner.id,
            "member",
            "role_change",
            object_id=user.id,
            label=user.email,
            before={"role": before},
            after={"role": role},
        )
    return user


def remove(partner: Partner, user_id: int) -> str:
    """Remove a member: the login is deleted, so every session of it ends at once (its
    known addresses go with it); the last owner cannot be removed; audited. Return the
    removed email."""
    with write_transaction():
        user = get_member(partner, user_id)
        if user.role == "owner" and _other_owners(partner, user) == 0:
            raise AppError("Conflict", LAST_OWNER.format(email=user.email), {"field": "member"})
        email, role, member_id = user.email, user.role, user.id
        audit.record(
            partner.id,
            "member",
            "remove",
            object_id=member_id,
            label=email,
            before={"email": email, "role": role},
        )
        db.session.delete(user)
    return email


def owner_count(partner: Partner) -> int:
    """Return how many owners the partner has."""
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.partner_id == partner.id, User.role == "owner")
        )
        or 0
    )
