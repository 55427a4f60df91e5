"""The action types CodePipeline itself provides (owner AWS, plus the two ThirdParty ones AWS
lists beside them), as ListActionTypes and GetActionType report them and as CreatePipeline
checks an action against them. Pure: no database.

Each type carries what AWS's "Valid action types and providers" and per-provider action
reference pages document: the number of input and output artifacts it takes, its
configuration keys (which are required, which are secret), and the pipeline types that may
use it. `supported` says whether Forgeline runs the type; one it does not run is still
listed, as on AWS, and CreatePipeline refuses it by name (codepipeline/structure.py).

Facts worth knowing:
- Commands is category Compute (AWS's action type id is Compute/AWS/Commands/1), V2 only, and
  takes its shell commands in the action's `commands` member instead of configuration keys.
- Amazon Inspector's action provider is `InspectorScan` (category Invoke).
- CodeStarSourceConnection is owner AWS; GitHub (version 1, OAuth) and AlexaSkillsKit are
  owner ThirdParty.
- The model caps ListActionTypes' artifact counts at 5 and both operations' property lists at
  10 entries, so a type with more (CloudFormation takes up to 10 inputs, StackSets has 13
  keys) is reported within those caps: required keys first. GetActionType's
  ActionTypeArtifactDetails go to 10, so it reports the full artifact bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

from forgeline.codepipeline.generated import shapes

AWS = "AWS"
THIRD_PARTY = "ThirdParty"
CUSTOM = "Custom"
VERSION = "1"  # every built-in action type is version 1

V1 = "V1"
V2 = "V2"
ALL_PIPELINE_TYPES = frozenset({V1, V2})
V2_ONLY = frozenset({V2})

STRING = "String"
NUMBER = "Number"
BOOLEAN = "Boolean"

# The model's caps on what the two operations answer (see the module docstring).
MAX_LISTED_PROPERTIES = 10
MAX_LISTED_ARTIFACTS = 5
# Every account may use a built-in type; AWS's pattern for allowedAccounts accepts "*".
EVERY_ACCOUNT = "*"


@dataclass(frozen=True)
class ConfigurationProperty:
    """One configuration key of an action type."""

    name: str
    required: bool
    key: bool
    secret: bool
    queryable: bool
    description: str
    type: str

    def to_shape(self) -> shapes.ActionConfigurationProperty:
        """ListActionTypes' form."""
        return {
            "name": self.name,
            "required": self.required,
            "key": self.key,
            "secret": self.secret,
            "queryable": self.queryable,
            "description": self.description,
            "type": self.type,
        }

    def to_type_property(self) -> shapes.ActionTypeProperty:
        """GetActionType's form: `optional` and `noEcho` say what `required` and `secret` say."""
        return {
            "name": self.name,
            "optional": not self.required,
            "key": self.key,
            "noEcho": self.secret,
            "queryable": self.queryable,
            "description": self.description,
        }


@dataclass(frozen=True)
class BuiltinActionType:
    category: str
    owner: str
    provider: str
    version: str
    input_artifacts: tuple[int, int]  # (minimum, maximum)
    output_artifacts: tuple[int, int]
    properties: tuple[ConfigurationProperty, ...]
    supported: bool  # Forgeline runs it
    pipeline_types: frozenset[str]
    description: str = ""

    @property
    def label(self) -> str:
        """How messages name the type: Category/Provider."""
        return f"{self.category}/{self.provider}"

    @property
    def property_names(self) -> tuple[str, ...]:
        return tuple(prop.name for prop in self.properties)

    @property
    def required_property_names(self) -> tuple[str, ...]:
        return tuple(prop.name for prop in self.properties if prop.required)

    def action_type_id(self) -> shapes.ActionTypeId:
        return {
            "category": self.category,
            "owner": self.owner,
            "provider": self.provider,
            "version": self.version,
        }

    def to_action_type(self) -> shapes.ActionType:
        """The type as ListActionTypes answers it. No settings: Forgeline has no console
        pages for the entity, execution and revision URL templates to point at."""
        return {
            "id": self.action_type_id(),
            "settings": {},
            "actionConfigurationProperties": [prop.to_shape() for prop in self._listed()],
            "inputArtifactDetails": _listed_counts(self.input_artifacts),
            "outputArtifactDetails": _listed_counts(self.output_artifacts),
        }

    def to_action_type_declaration(self) -> shapes.ActionTypeDeclaration:
        """The type as GetActionType answers it. The service runs built-in actions itself,
        so the executor is a job worker with nobody else polling for its jobs."""
        declaration: shapes.ActionTypeDeclaration = {
            "executor": {
                "configuration": {"jobWorkerExecutorConfiguration": {}},
                "type": "JobWorker",
            },
            "id": self.action_type_id(),
            "inputArtifactDetails": _counts(self.input_artifacts),
            "outputArtifactDetails": _counts(self.output_artifacts),
            "permissions": {"allowedAccounts": [EVERY_ACCOUNT]},
            "properties": [prop.to_type_property() for prop in self._listed()],
        }
        if self.description:
            declaration["description"] = self.description
        return declaration

    def _listed(self) -> list[ConfigurationProperty]:
        ordered = [p for p in self.properties if p.required] + [
            p for p in self.properties if not p.required
        ]
        return ordered[:MAX_LISTED_PROPERTIES]


def _counts(bounds: tuple[int, int]) -> shapes.ActionTypeArtifactDetails:
    return {"minimumCount": bounds[0], "maximumCount": bounds[1]}


def _listed_counts(bounds: tuple[int, int]) -> shapes.ArtifactDetails:
    return {
        "minimumCount": min(bounds[0], MAX_LISTED_ARTIFACTS),
        "maximumCount": min(bounds[1], MAX_LISTED_ARTIFACTS),
    }


# -- building blocks ----------------------------------------------------------------------
def _required(name: str, description: str, kind: str = STRING) -> ConfigurationProperty:
    # A required key identifies what the action works on, so it is also a key property.
    return ConfigurationProperty(name, True, True, False, False, description, kind)


def _optional(name: str, description: str, kind: str = STRING) -> ConfigurationProperty:
    return ConfigurationProperty(name, False, False, False, False, description, kind)


def _secret(name: str, description: str) -> ConfigurationProperty:
    return ConfigurationProperty(name, True, False, True, False, description, STRING)


def _type(
    category: str,
    provider: str,
    inputs: tuple[int, int],
    outputs: tuple[int, int],
    properties: tuple[ConfigurationProperty, ...],
    *,
    supported: bool,
    description: str,
    owner: str = AWS,
    pipeline_types: frozenset[str] = ALL_PIPELINE_TYPES,
) -> BuiltinActionType:
    return BuiltinActionType(
        category=category,
        owner=owner,
        provider=provider,
        version=VERSION,
        input_artifacts=inputs,
        output_artifacts=outputs,
        properties=properties,
        supported=supported,
        pipeline_types=pipeline_types,
        description=description,
    )


_POLL = _optional(
    "PollForSourceChanges", "Whether the source is polled for changes (true or false).", BOOLEAN
)
_CODEBUILD_PROPERTIES = (
    _required("ProjectName", "The CodeBuild project that runs the build."),
    _optional(
        "PrimarySource",
        "The input artifact whose directory holds the buildspec; needed with several inputs.",
    ),
    _optional(
        "EnvironmentVariables",
        "A JSON list of {name, value, type} that overrides the project's variables.",
    ),
    _optional("BatchEnabled", "Whether the build runs as a batch build.", BOOLEAN),
    _optional(
        "CombineArtifacts",
        "Whether a batch build's artifacts are combined into one output artifact.",
        BOOLEAN,
    ),
)

# -- what Forgeline runs ------------------------------------------------------------------
_RUNNABLE = (
    _type(
        "Source",
        "CodeCommit",
        (0, 0),
        (1, 1),
        (
            _required("RepositoryName", "The repository whose branch is watched."),
            _required("BranchName", "The branch whose commits start the pipeline."),
            _POLL,
            _optional(
                "OutputArtifactFormat",
                "CODE_ZIP (the default: a ZIP of the commit) or CODEBUILD_CLONE_REF.",
            ),
        ),
        supported=True,
        description="Starts the pipeline on a commit to a CodeCommit branch.",
    ),
    _type(
        "Source",
        "S3",
        (0, 0),
        (1, 1),
        (
            _required("S3Bucket", "The versioned bucket holding the source object."),
            _required("S3ObjectKey", "The key of the source object (a ZIP file)."),
            _POLL,
            _optional(
                "AllowOverrideForS3ObjectKey",
                "Whether StartPipelineExecution may override the object key.",
                BOOLEAN,
            ),
        ),
        supported=True,
        description="Starts the pipeline on a new version of an S3 object.",
    ),
    _type(
        "Build",
        "CodeBuild",
        (1, 5),
        (0, 5),
        _CODEBUILD_PROPERTIES,
        supported=True,
        description="Runs a CodeBuild project as a build.",
    ),
    _type(
        "Test",
        "CodeBuild",
        (1, 5),
        (0, 5),
        _CODEBUILD_PROPERTIES,
        supported=True,
        description="Runs a CodeBuild project as a test.",
    ),
    _type(
        "Compute",
        "Commands",
        (1, 10),
        (0, 1),
        (),
        supported=False,  # not run yet: CreatePipeline refuses it by name
        description="Runs the action's shell commands in a managed build environment.",
        pipeline_types=V2_ONLY,
    ),
    _type(
        "Deploy",
        "CodeDeploy",
        (1, 1),
        (0, 0),
        (
            _required("ApplicationName", "The CodeDeploy application."),
            _required("DeploymentGroupName", "The application's deployment group."),
        ),
        supported=True,
        description="Deploys the input artifact as a CodeDeploy revision.",
    ),
    _type(
        "Deploy",
        "S3",
        (1, 1),
        (0, 0),
        (
            _required("BucketName", "The bucket the artifact is deployed to."),
            _required(
                "Extract", "true to unzip the artifact into the bucket, false to copy it.", BOOLEAN
            ),
            _optional("ObjectKey", "The object key or prefix; required when Extract is false."),
            _optional("KMSEncryptionKeyARN", "The KMS key that encrypts the deployed objects."),
            _optional("CannedACL", "The canned ACL applied to the deployed objects."),
            _optional("CacheControl", "The Cache-Control header of the deployed objects."),
        ),
        supported=True,
        description="Copies or extracts the input artifact into an S3 bucket.",
    ),
    _type(
        "Approval",
        "Manual",
        (0, 0),
        (0, 0),
        (
            _optional("NotificationArn", "The SNS topic told that an approval is waiting."),
            _optional("CustomData", "Text shown to the reviewer."),
            _optional("ExternalEntityLink", "A URL for the reviewer to look at."),
        ),
        supported=True,
        description="Waits for someone to approve or reject with PutApprovalResult.",
    ),
    _type(
        "Invoke",
        "Lambda",
        (0, 5),
        (0, 5),
        (
            _required("FunctionName", "The Lambda function invoked."),
            _optional("UserParameters", "A string handed to the function with the job."),
        ),
        supported=True,
        description="Invokes a Lambda function, which reports the job's result.",
    ),
)

# -- known, but not run here ----------------------------------------------------------------
_REFUSED = (
    _type(
        "Source",
        "CodeStarSourceConnection",
        (0, 0),
        (1, 1),
        (
            _required("ConnectionArn", "The connection to the external repository host."),
            _required("FullRepositoryId", "The repository as owner/name."),
            _required("BranchName", "The branch whose commits start the pipeline."),
            _optional("OutputArtifactFormat", "CODE_ZIP or CODEBUILD_CLONE_REF."),
            _optional("DetectChanges", "Whether changes start the pipeline.", BOOLEAN),
        ),
        supported=False,
        description="Starts the pipeline from a repository reached through a connection.",
    ),
    _type(
        "Source",
        "ECR",
        (0, 0),
        (1, 1),
        (
            _required("RepositoryName", "The Amazon ECR repository."),
            _optional("ImageTag", "The image tag watched (latest by default)."),
        ),
        supported=False,
        description="Starts the pipeline on a new image in an Amazon ECR repository.",
    ),
    _type(
        "Source",
        "GitHub",
        (0, 0),
        (1, 1),
        (
            _required("Owner", "The GitHub user or organization."),
            _required("Repo", "The repository."),
            _required("Branch", "The branch whose commits start the pipeline."),
            _secret("OAuthToken", "The GitHub token the action authenticates with."),
            _POLL,
        ),
        supported=False,
        description="Starts the pipeline on a commit to a GitHub branch (OAuth app).",
        owner=THIRD_PARTY,
    ),
    _type(
        "Build",
        "ECRBuildAndPublish",
        (1, 1),
        (0, 0),
        (
            _required("ECRRepositoryName", "The Amazon ECR repository the image is pushed to."),
            _optional("DockerFilePath", "Where the Dockerfile is, if not at the root."),
            _optional("ImageTags", "Comma-separated tags for the image (latest by default)."),
            _optional("RegistryType", "private (the default) or public."),
        ),
        supported=False,
        description="Builds a Docker image and pushes it to Amazon ECR.",
        pipeline_types=V2_ONLY,
    ),
    _type(
        "Test",
        "DeviceFarm",
        (1, 1),
        (0, 0),
        (
            _required("AppType", "iOS, Android or Web."),
            _required("ProjectId", "The Device Farm project."),
            _required("App", "The application file in the input artifact."),
            _required("DevicePoolArn", "The device pool the tests run on."),
            _required("TestType", "The test framework."),
            _optional("AppiumVersion", "The Appium version."),
            _optional("Test", "The test definition file in the input artifact."),
            _optional("RecordVideo", "Whether video is recorded.", BOOLEAN),
            _optional("RecordAppPerformanceData", "Whether performance is recorded.", BOOLEAN),
            _optional("JobTimeoutMinutes", "Minutes a run may take per device.", NUMBER),
            _optional("FuzzEventCount", "User interface events of a fuzz test.", NUMBER),
            _optional("FuzzEventThrottle", "Milliseconds between fuzz events.", NUMBER),
        ),
        supported=False,
        description="Tests an application on AWS Device Farm devices.",
    ),
    _type(
        "Deploy",
        "CloudFormation",
        (0, 10),
        (0, 1),
        (
            _required("ActionMode", "The stack or change set operation."),
            _required("StackName", "The stack."),
            _optional("Capabilities", "The capabilities the template needs."),
            _optional("ChangeSetName", "The change set, for change set modes."),
            _optional("OutputFileName", "The file the stack outputs are written to."),
            _optional("ParameterOverrides", "A JSON object of template parameter values."),
            _optional("RoleArn", "The role CloudFormation acts with."),
            _optional("TemplatePath", "The template, as ArtifactName::path."),
            _optional("TemplateConfiguration", "A configuration file, as ArtifactName::path."),
        ),
        supported=False,
        description="Creates, updates or deletes a CloudFormation stack or change set.",
    ),
    _type(
        "Deploy",
        "CloudFormationStackSet",
        (1, 3),
        (0, 0),
        (
            _required("StackSetName", "The stack set."),
            _required("TemplatePath", "The template, as ArtifactName::path."),
            _optional("Description", "The stack set's description."),
            _optional("Parameters", "Template parameters, literal or ArtifactName::path."),
            _optional("Capabilities", "The capabilities the template needs."),
            _optional("PermissionModel", "SELF_MANAGED (the default) or SERVICE_MANAGED."),
            _optional("AdministrationRoleArn", "The administrator role (self-managed)."),
            _optional("ExecutionRoleName", "The execution role name (self-managed)."),
            _optional("OrganizationsAutoDeployment", "Enabled, Disabled or with retention."),
            _optional("DeploymentTargets", "Accounts or organizational units."),
            _optional("Regions", "The Regions stack instances are deployed to."),
            _optional("FailureTolerancePercentage", "Failed accounts tolerated.", NUMBER),
            _optional("MaxConcurrentPercentage", "Accounts deployed at once.", NUMBER),
        ),
        supported=False,
        description="Creates or updates a CloudFormation stack set.",
    ),
    _type(
        "Deploy",
        "CloudFormationStackInstances",
        (0, 2),
        (0, 0),
        (
            _required("StackSetName", "The stack set."),
            _required("Regions", "The Regions stack instances are deployed to."),
            _optional("DeploymentTargets", "Accounts or organizational units."),
            _optional("ParameterOverrides", "Parameter overrides for the instances."),
            _optional("FailureTolerancePercentage", "Failed accounts tolerated.", NUMBER),
            _optional("MaxConcurrentPercentage", "Accounts deployed at once.", NUMBER),
        ),
        supported=False,
        description="Creates or updates a stack set's stack instances.",
    ),
    _type(
        "Deploy",
        "ECS",
        (1, 1),
        (0, 0),
        (
            _required("ClusterName", "The Amazon ECS cluster."),
            _required("ServiceName", "The Amazon ECS service."),
            _optional("FileName", "The image definitions file (imagedefinitions.json)."),
            _optional("DeploymentTimeout", "Minutes the deployment may take.", NUMBER),
        ),
        supported=False,
        description="Deploys new images to an Amazon ECS service.",
    ),
    _type(
        "Deploy",
        "CodeDeployToECS",
        (1, 5),
        (0, 0),
        (
            _required("ApplicationName", "The CodeDeploy application."),
            _required("DeploymentGroupName", "The ECS deployment group."),
            _required("TaskDefinitionTemplateArtifact", "The artifact with the task definition."),
            _required("AppSpecTemplateArtifact", "The artifact with the AppSpec file."),
            _optional("TaskDefinitionTemplatePath", "The task definition file (taskdef.json)."),
            _optional("AppSpecTemplatePath", "The AppSpec file (appspec.yaml)."),
            _optional("Image1ArtifactName", "The artifact with the first image."),
            _optional("Image1ContainerName", "The placeholder for the first image."),
            _optional("Image2ArtifactName", "The artifact with the second image."),
            _optional("Image2ContainerName", "The placeholder for the second image."),
            _optional("Image3ArtifactName", "The artifact with the third image."),
            _optional("Image3ContainerName", "The placeholder for the third image."),
            _optional("Image4ArtifactName", "The artifact with the fourth image."),
            _optional("Image4ContainerName", "The placeholder for the fourth image."),
        ),
        supported=False,
        description="Deploys to Amazon ECS blue/green through CodeDeploy.",
    ),
    _type(
        "Deploy",
        "ElasticBeanstalk",
        (1, 1),
        (0, 0),
        (
            _required("ApplicationName", "The Elastic Beanstalk application."),
            _required("EnvironmentName", "The application's environment."),
        ),
        supported=False,
        description="Deploys to an Elastic Beanstalk environment.",
    ),
    _type(
        "Deploy",
        "AppConfig",
        (1, 1),
        (0, 0),
        (
            _required("Application", "The AppConfig application."),
            _required("Environment", "The AppConfig environment."),
            _required("ConfigurationProfile", "The configuration profile."),
            _required("InputArtifactConfigurationPath", "The configuration file's path."),
            _optional("DeploymentStrategy", "The deployment strategy."),
        ),
        supported=False,
        description="Deploys configuration data with AWS AppConfig.",
    ),
    _type(
        "Deploy",
        "OpsWorks",
        (1, 1),
        (0, 0),
        (
            _required("Stack", "The OpsWorks stack."),
            _required("App", "The stack's app."),
            _optional("Layer", "The layer deployed to."),
        ),
        supported=False,
        description="Deploys an OpsWorks Stacks app.",
    ),
    _type(
        "Deploy",
        "ServiceCatalog",
        (1, 1),
        (0, 0),
        (
            _required("ProductId", "The Service Catalog product."),
            _optional("ConfigurationFilePath", "A file with the product's configuration."),
            _optional("TemplateFilePath", "The template of the new product version."),
            _optional("ProductVersionName", "The name of the new product version."),
            _optional("ProductType", "The product type."),
            _optional("ProductVersionDescription", "The new version's description."),
        ),
        supported=False,
        description="Publishes a Service Catalog product version.",
    ),
    _type(
        "Deploy",
        "AlexaSkillsKit",
        (1, 2),
        (0, 0),
        (
            _required("ClientId", "The Login with Amazon client."),
            _secret("ClientSecret", "The Login with Amazon client secret."),
            _secret("RefreshToken", "The refresh token of the skill's developer."),
            _required("SkillId", "The Alexa skill."),
        ),
        supported=False,
        description="Deploys an Alexa skill.",
        owner=THIRD_PARTY,
    ),
    _type(
        "Deploy",
        "EKS",
        (1, 1),
        (0, 0),
        (
            _required("ClusterName", "The Amazon EKS cluster."),
            _optional("ManifestFiles", "The Kubernetes manifest files (kubectl)."),
            _optional("HelmReleaseName", "The Helm release (Helm)."),
            _optional("HelmChartLocation", "The Helm chart (Helm)."),
            _optional("HelmValuesFiles", "Helm values files (Helm)."),
            _optional("Namespace", "The Kubernetes namespace."),
            _optional("Subnets", "Subnets of the cluster's VPC."),
            _optional("SecurityGroupIds", "Security groups of the cluster's VPC."),
        ),
        supported=False,
        description="Deploys to an Amazon EKS cluster with kubectl or Helm.",
        pipeline_types=V2_ONLY,
    ),
    _type(
        "Invoke",
        "StepFunctions",
        (0, 1),
        (0, 1),
        (
            _required("StateMachineArn", "The state machine started."),
            _optional("ExecutionNamePrefix", "A prefix for the execution's name."),
            _optional("InputType", "Literal (the default) or FilePath."),
            _optional("Input", "The execution's input, or the file holding it."),
        ),
        supported=False,
        description="Starts an AWS Step Functions state machine execution.",
    ),
    _type(
        "Invoke",
        "InspectorScan",
        (0, 1),
        (1, 1),
        (
            _required("InspectorRunMode", "SourceCodeScan or ECRImageScan."),
            _optional("ECRRepositoryName", "The Amazon ECR repository scanned."),
            _optional("ImageTag", "The image tag scanned."),
            _optional("CriticalThreshold", "Critical findings tolerated.", NUMBER),
            _optional("HighThreshold", "High findings tolerated.", NUMBER),
            _optional("MediumThreshold", "Medium findings tolerated.", NUMBER),
            _optional("LowThreshold", "Low findings tolerated.", NUMBER),
        ),
        supported=False,
        description="Scans source code or an image for vulnerabilities with Amazon Inspector.",
    ),
)

BUILTIN_ACTION_TYPES: tuple[BuiltinActionType, ...] = _RUNNABLE + _REFUSED

_BY_ID = {
    (kind.category, kind.owner, kind.provider, kind.version): kind for kind in BUILTIN_ACTION_TYPES
}


def find_builtin(
    category: str, owner: str, provider: str, version: str
) -> BuiltinActionType | None:
    """The built-in type with exactly this id (AWS compares ids case-sensitively)."""
    return _BY_ID.get((category, owner, provider, version))


def builtin_action_types(owner: str | None = None) -> list[BuiltinActionType]:
    """ListActionTypes' built-in part: every type, or those of one owner
    (actionOwnerFilter); Custom owns none of them."""
    return [kind for kind in BUILTIN_ACTION_TYPES if owner is None or kind.owner == owner]


def supported_action_types() -> list[BuiltinActionType]:
    """The types Forgeline runs."""
    return [kind for kind in BUILTIN_ACTION_TYPES if kind.supported]
