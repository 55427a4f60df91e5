"""The resources a request (or the deployment driver, or the agents' command service) names:
applications, deployment groups, deployment configurations and on-premises instances, each
found within one account and region, with the not-found errors CodeDeploy answers.

Everything here takes the account and region rather than a request context, so code that
runs outside a request (the deployment driver) uses the same lookups.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from forgeline.codedeploy import configs
from forgeline.codedeploy.generated import errors
from forgeline.codedeploy.tables.applications import Application
from forgeline.codedeploy.tables.deployment_groups import DeploymentGroup
from forgeline.codedeploy.tables.instances import OnPremisesInstance


# -- names a request must carry ---------------------------------------------------------------
def application_name_param(name: str | None) -> str:
    """The model leaves applicationName optional in some inputs; CodeDeploy still needs it."""
    if not name:
        raise errors.ApplicationNameRequiredException("The application name is required.")
    return name


def deployment_group_name_param(name: str | None) -> str:
    if not name:
        raise errors.DeploymentGroupNameRequiredException("The deployment group name is required.")
    return name


def instance_name_param(name: str | None) -> str:
    if not name:
        raise errors.InstanceNameRequiredException("The on-premises instance name is required.")
    return name


# -- applications --------------------------------------------------------------------------------
def find_application(
    session: Session, account_id: str, region: str, name: str, *, for_update: bool = False
) -> Application | None:
    query = select(Application).where(
        Application.account_id == account_id,
        Application.region == region,
        Application.name == name,
    )
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).first()


def application_missing(name: str) -> errors.ApplicationDoesNotExistException:
    return errors.ApplicationDoesNotExistException(
        f"No application named {name} exists with the user or AWS account."
    )


def require_application(
    session: Session, account_id: str, region: str, name: str, *, for_update: bool = False
) -> Application:
    application = find_application(session, account_id, region, name, for_update=for_update)
    if application is None:
        raise application_missing(name)
    return application


# -- deployment groups ------------------------------------------------------------------------------
def find_deployment_group(
    session: Session, application: Application, name: str, *, for_update: bool = False
) -> DeploymentGroup | None:
    query = select(DeploymentGroup).where(
        DeploymentGroup.application_id == application.id, DeploymentGroup.name == name
    )
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).first()


def deployment_group_missing(
    application: Application, name: str
) -> errors.DeploymentGroupDoesNotExistException:
    return errors.DeploymentGroupDoesNotExistException(
        f"No deployment group named {name} exists for application {application.name}."
    )


def require_deployment_group(
    session: Session, application: Application, name: str, *, for_update: bool = False
) -> DeploymentGroup:
    group = find_deployment_group(session, application, name, for_update=for_update)
    if group is None:
        raise deployment_group_missing(application, name)
    return group


def groups_of(session: Session, application: Application) -> list[DeploymentGroup]:
    return list(
        session.scalars(
            select(DeploymentGroup)
            .where(DeploymentGroup.application_id == application.id)
            .order_by(DeploymentGroup.name)
        )
    )


# -- deployment configurations ------------------------------------------------------------------------
def require_config(
    session: Session, account_id: str, region: str, name: str
) -> configs.DeploymentConfigInfo:
    """A predefined or custom deployment configuration of this account and region."""
    info = configs.find(session, account_id, region, name)
    if info is None:
        raise errors.DeploymentConfigDoesNotExistException(
            f"No deployment configuration named {name} exists with the user or AWS account."
        )
    return info


# -- on-premises instances -------------------------------------------------------------------------
def find_instance(
    session: Session, account_id: str, region: str, name: str, *, for_update: bool = False
) -> OnPremisesInstance | None:
    query = select(OnPremisesInstance).where(
        OnPremisesInstance.account_id == account_id,
        OnPremisesInstance.region == region,
        OnPremisesInstance.name == name,
    )
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).first()


def instance_not_registered(name: str) -> errors.InstanceNotRegisteredException:
    return errors.InstanceNotRegisteredException(
        f"No on-premises instance named {name} is registered with the user or AWS account."
    )


def find_instance_by_host_identifier(
    session: Session, account_id: str, region: str, arn: str
) -> OnPremisesInstance | None:
    """The registered (not deregistered) instance whose agent polls as `arn`: its IAM user
    ARN or IAM session ARN, in this account and region."""
    return session.scalars(
        select(OnPremisesInstance).where(
            OnPremisesInstance.account_id == account_id,
            OnPremisesInstance.region == region,
            OnPremisesInstance.deregistered_at.is_(None),
            or_(OnPremisesInstance.iam_user_arn == arn, OnPremisesInstance.iam_session_arn == arn),
        )
    ).first()
