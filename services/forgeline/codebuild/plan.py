"""Compile a parsed buildspec into a backend-neutral plan: one POSIX shell script per phase.

How a runner uses it: for each phase it runs ``<plan.shell> <script file> <state dir>`` with
the build's environment, the first phase starting in the source directory. Every phase
script of a build gets the same state directory.

Why this design (version 0.2 persistence): every command runs in a subshell of the phase
script, so a command that calls ``exit`` or ``exec`` ends only that subshell and is reported
as that command's failure instead of killing the session. When the subshell ends (normally
or through ``exit``) an EXIT trap writes the whole shell state it reached -- working
directory, every shell variable and which of them are exported -- as a sourceable file in
the state directory; the phase script loads it before the next command, and the next phase
script loads it on start. Unexported variables (``TAG=$(...)`` then ``echo $TAG``),
``export`` and ``cd`` therefore persist across commands and phases exactly, and ``unset``
does too. Not carried over: shell functions, aliases and ``set`` options, and bash arrays
(kept as their first element).

Version 0.1 runs each command in a fresh subshell started from the script's initial
directory and environment, and nothing is saved.

Per-command results go to ``<state dir>/<phase>.status`` as ``<index> <exit status>``
lines (commands first, then ``finally`` commands, indexed in that order); a command that
did not run writes nothing. ``CODEBUILD_BUILD_SUCCEEDING`` is kept in
``<state dir>/succeeding`` and exported to every command.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from forgeline.codebuild.buildspec import (
    PHASE_NAMES,
    Artifacts,
    Buildspec,
    Cache,
    ReportGroup,
    SecretReference,
)

COMMAND_EXECUTION_ERROR = "COMMAND_EXECUTION_ERROR"

# Variables owned by the shell itself (or by the script) that must never be restored.
_SHELL_OWNED = (
    "PPID PWD OLDPWD SHLVL _ LINENO RANDOM SRANDOM SECONDS IFS OPTIND OPTARG PS1 PS2 PS4 "
    "EUID UID GROUPS HISTCMD FUNCNAME DIRSTACK PIPESTATUS SHELLOPTS EPOCHREALTIME "
    "EPOCHSECONDS COLUMNS LINES"
)

# Helpers shared by every phase script. Names start with __fl_ so they stay out of the way.
_PRELUDE = r"""
__fl_state=${1:?usage: phase-script STATE_DIR}
__fl_phase=@PHASE@
__fl_status_file="$__fl_state/$__fl_phase.status"
: > "$__fl_status_file"

# __fl_quote VALUE: sets __fl_q to VALUE single-quoted for the shell, without a fork.
__fl_quote() {
  __fl_r=$1
  __fl_q=
  while :; do
    case $__fl_r in
      *"'"*)
        __fl_q="$__fl_q${__fl_r%%"'"*}'\\''"
        __fl_r=${__fl_r#*"'"}
        ;;
      *)
        __fl_q="'$__fl_q$__fl_r'"
        return 0
        ;;
    esac
  done
}

# Names of the variables this shell has (a superset is fine: unknown names are skipped).
__fl_names() {
  set | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' | sort -u
}

# True for variables owned by the shell or by this script.
__fl_owned() {
  case " @SHELL_OWNED@ " in *" $1 "*) return 0 ;; esac
  case $1 in __fl_* | BASH* | CODEBUILD_BUILD_SUCCEEDING) return 0 ;; esac
  return 1
}

# Writes the shell's variables, exports and working directory as a sourceable file,
# and the names of those variables to "names".
__fl_save() {
  unset IFS
  : > "$__fl_state/names.tmp"
  {
    __fl_names | while read -r __fl_n; do
      __fl_owned "$__fl_n" && continue
      eval "[ \"\${$__fl_n+set}\" = set ]" || continue
      echo "$__fl_n" >> "$__fl_state/names.tmp"
      eval "__fl_v=\${$__fl_n}X"
      __fl_quote "${__fl_v%X}"
      printf '%s=%s\n' "$__fl_n" "$__fl_q"
    done
    export -p | sed -n 's/^\(export\|declare -x\) \([A-Za-z_][A-Za-z0-9_]*\).*/export \2/p'
    __fl_quote "$(pwd)X"
    printf '__fl_cwd=%s\n' "$__fl_q"
  } > "$__fl_state/session.tmp"
  mv -f "$__fl_state/names.tmp" "$__fl_state/names"
  mv -f "$__fl_state/session.tmp" "$__fl_state/session"
}

# Loads the saved state: drops variables the command unset, then sets, exports and cds.
__fl_load() {
  [ -f "$__fl_state/session" ] || return 0
  __fl_names > "$__fl_state/names.here"
  for __fl_n in $(grep -vxF -f "$__fl_state/names" "$__fl_state/names.here"); do
    __fl_owned "$__fl_n" || unset "$__fl_n" 2>/dev/null
  done
  . "$__fl_state/session"
  cd "${__fl_cwd%X}" || return 1
}

__fl_succeeding() {
  CODEBUILD_BUILD_SUCCEEDING=1
  if [ -f "$__fl_state/succeeding" ]; then
    CODEBUILD_BUILD_SUCCEEDING=$(cat "$__fl_state/succeeding")
  fi
  export CODEBUILD_BUILD_SUCCEEDING
}

# UTC time with microseconds, as every [Container] line has it. GNU date and most BusyBox
# builds know %N; Debian's static BusyBox prints it literally, so its adjtimex applet
# (which reports the clock's seconds and microseconds) is asked instead.
__fl_stamp() {
  __fl_t=$(date -u '+%Y/%m/%d %H:%M:%S.%N' 2>/dev/null)
  case ${__fl_t##*.} in
    [0-9][0-9][0-9][0-9][0-9][0-9]*)
      printf '%s.%.6s' "${__fl_t%.*}" "${__fl_t##*.}"
      return 0
      ;;
  esac
  # Two lines: seconds, then microseconds.
  __fl_clock=$(adjtimex 2>/dev/null | sed -n -e 's/^ *time\.tv_sec: *\([0-9][0-9]*\).*/\1/p' \
    -e 's/^ *time\.tv_usec: *\([0-9][0-9]*\).*/\1/p')
  __fl_sec=${__fl_clock%%[!0-9]*}
  __fl_usec=${__fl_clock##*[!0-9]}
  if [ -n "$__fl_sec" ] && [ "$__fl_sec" != "$__fl_clock" ] &&
    __fl_whole=$(date -u -d "@$__fl_sec" '+%Y/%m/%d %H:%M:%S' 2>/dev/null); then
    printf '%s.%06d' "$__fl_whole" "$__fl_usec"
    return 0
  fi
  printf '%s.000000' "${__fl_t%.*}"
}

# __fl_run INDEX COMMAND: runs one command, records "<index> <status>", returns the status.
__fl_run() {
  __fl_i=$1
  __fl_cmd=$2
  # The line AWS's logs show before each command (one line, even for a multi-line one).
  printf '[Container] %s Running command %s\n' "$(__fl_stamp)" \
    "$(printf '%s' "$__fl_cmd" | tr '\n' ' ')"
  if [ "@PERSIST@" = 1 ]; then
    (
      trap '__fl_rc=$?; set +eux; __fl_save; exit $__fl_rc' EXIT
      eval "$__fl_cmd"
    ) < /dev/null
    __fl_rc=$?
    if ! __fl_load && [ "$__fl_rc" = 0 ]; then
      __fl_rc=1
    fi
  else
    (
      cd "$__fl_start" || exit 1
      eval "$__fl_cmd"
    ) < /dev/null
    __fl_rc=$?
  fi
  printf '%s %s\n' "$__fl_i" "$__fl_rc" >> "$__fl_status_file"
  if [ "$__fl_rc" -ne 0 ]; then
    echo 0 > "$__fl_state/succeeding"
    CODEBUILD_BUILD_SUCCEEDING=0
    export CODEBUILD_BUILD_SUCCEEDING
  fi
  return "$__fl_rc"
}

__fl_start=$(pwd)
if [ "@PERSIST@" = 1 ]; then
  __fl_load || exit 1
fi
__fl_succeeding
__fl_failed=0
__fl_finally_failed=0
""".lstrip("\n")


@dataclass(frozen=True)
class PlanStep:
    index: int
    command: str
    in_finally: bool


@dataclass(frozen=True)
class PhasePlan:
    name: str  # buildspec name: install, pre_build, build, post_build
    phase_type: str  # CodeBuild phase type: INSTALL, PRE_BUILD, BUILD, POST_BUILD
    commands: tuple[str, ...]
    finally_commands: tuple[str, ...]
    on_failure: str
    run_as: str | None
    script: str

    @property
    def steps(self) -> tuple[PlanStep, ...]:
        body = [PlanStep(i, c, False) for i, c in enumerate(self.commands)]
        offset = len(self.commands)
        tail = [PlanStep(offset + i, c, True) for i, c in enumerate(self.finally_commands)]
        return tuple(body + tail)

    @property
    def status_file(self) -> str:
        """The status file's name inside the state directory."""
        return f"{self.name}.status"


@dataclass(frozen=True)
class BuildPlan:
    version: str
    shell: str  # "sh" or "bash": the program that runs every phase script
    persistent_session: bool
    phases: tuple[PhasePlan, ...]
    variables: dict[str, str] = field(default_factory=dict)  # literal, never expanded
    parameter_store: dict[str, str] = field(default_factory=dict)
    secrets_manager: dict[str, SecretReference] = field(default_factory=dict)
    exported_variables: tuple[str, ...] = ()
    git_credential_helper: bool = False
    runtime_versions: dict[str, str] = field(default_factory=dict)
    reports: dict[str, ReportGroup] = field(default_factory=dict)
    artifacts: Artifacts | None = None
    cache: Cache | None = None

    def phase(self, phase_type: str) -> PhasePlan:
        for phase in self.phases:
            if phase.phase_type == phase_type:
                return phase
        raise KeyError(phase_type)


@dataclass(frozen=True)
class StepResult:
    step: PlanStep
    exit_status: int | None  # None: the step did not run


@dataclass(frozen=True)
class PhaseOutcome:
    succeeded: bool
    results: tuple[StepResult, ...]
    failed_step: StepResult | None = None

    @property
    def failure_context(self) -> tuple[str, str] | None:
        """(statusCode, message) for the phase's contexts, naming the first failing step."""
        failed = self.failed_step
        if failed is None:
            return None
        reason = (
            f"exit status {failed.exit_status}"
            if failed.exit_status is not None
            else "the command did not report an exit status"
        )
        message = f"Error while executing command: {failed.step.command}. Reason: {reason}"
        return COMMAND_EXECUTION_ERROR, message

    @property
    def context_message(self) -> str | None:
        """AWS's context line, e.g. ``COMMAND_EXECUTION_ERROR: Error while executing ...``."""
        context = self.failure_context
        return None if context is None else f"{context[0]}: {context[1]}"


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def render_phase_script(
    name: str,
    commands: Iterable[str],
    finally_commands: Iterable[str],
    persistent: bool,
) -> str:
    """The POSIX shell script that runs one phase; its exit status is 0 only if all succeed."""
    commands = tuple(commands)
    finally_commands = tuple(finally_commands)
    prelude = (
        _PRELUDE.replace("@PHASE@", name)
        .replace("@SHELL_OWNED@", _SHELL_OWNED)
        .replace("@PERSIST@", "1" if persistent else "0")
    )
    lines = [f"# Phase {name}: generated from the buildspec; do not edit.", prelude]
    for index, command in enumerate(commands):
        lines.append(
            f'[ "$__fl_failed" = 0 ] && {{ __fl_run {index} {shell_quote(command)} '
            "|| __fl_failed=$?; }"
        )
    for offset, command in enumerate(finally_commands):
        index = len(commands) + offset
        lines.append(
            f'[ "$__fl_finally_failed" = 0 ] && {{ __fl_run {index} {shell_quote(command)} '
            "|| __fl_finally_failed=$?; }"
        )
    lines.append('[ "$__fl_failed" = 0 ] || exit "$__fl_failed"')
    lines.append('exit "$__fl_finally_failed"')
    return "\n".join(lines) + "\n"


def compile_plan(spec: Buildspec) -> BuildPlan:
    persistent = spec.version != "0.1"
    phases = []
    for name in PHASE_NAMES:
        phase = spec.phase(name)
        phases.append(
            PhasePlan(
                name=name,
                phase_type=name.upper(),
                commands=phase.commands,
                finally_commands=phase.finally_commands,
                on_failure=phase.on_failure,
                run_as=phase.run_as or spec.run_as,
                script=render_phase_script(
                    name, phase.commands, phase.finally_commands, persistent
                ),
            )
        )
    return BuildPlan(
        version=spec.version,
        shell=spec.env.shell or "sh",
        persistent_session=persistent,
        phases=tuple(phases),
        variables=dict(spec.env.variables),
        parameter_store=dict(spec.env.parameter_store),
        secrets_manager=dict(spec.env.secrets_manager),
        exported_variables=spec.env.exported_variables,
        git_credential_helper=spec.env.git_credential_helper,
        runtime_versions=dict(spec.phase("install").runtime_versions),
        reports=dict(spec.reports),
        artifacts=spec.artifacts,
        cache=spec.cache,
    )


def read_status(text: str) -> dict[int, int]:
    """Parse a phase status file into {step index: exit status}; malformed lines are skipped."""
    statuses = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1].lstrip("-").isdigit():
            statuses[int(parts[0])] = int(parts[1])
    return statuses


def evaluate_phase(phase: PhasePlan, status_text: str) -> PhaseOutcome:
    """Judge a phase from its status file: every command and finally command must succeed.

    A step that should have run but reported nothing (the session died) counts as failed.
    """
    statuses = read_status(status_text)
    results = []
    failed: StepResult | None = None
    body_failed = finally_failed = False
    for step in phase.steps:
        should_run = not (finally_failed if step.in_finally else body_failed)
        status = statuses.get(step.index)
        result = StepResult(step, status)
        results.append(result)
        if not should_run:
            continue
        if status is None or status != 0:
            if failed is None:
                failed = result
            if step.in_finally:
                finally_failed = True
            else:
                body_failed = True
    return PhaseOutcome(succeeded=failed is None, results=tuple(results), failed_step=failed)
