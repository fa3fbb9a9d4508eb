"""`backdrop preflight`'s pure checks, no AWS at all: samconfig.toml and overrides, the
parameter values CloudFormation, AWS or the functions would refuse, the concurrency and API
Gateway verdicts, the stack's state, and the build's layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from backdrop_local import preflight
from backdrop_local.preflight import Concurrency, DeployedStack, Layer
from backdrop_local.template import TEMPLATE_PATH, Template

ROOT = Path(__file__).resolve().parents[2]
AARCH64, X86_64 = 183, 62


@pytest.fixture(scope="module")
def template() -> Template:
    return Template()


def problems(template: Template, source: str = "--parameter-overrides", **given: str) -> list[str]:
    layers = [Layer(source, given)]
    values = preflight.effective_values(template.body["Parameters"], layers)
    return preflight.parameter_problems(template, values, layers)


# samconfig.toml and overrides.


def test_overrides_read_as_sam_reads_them() -> None:
    assert preflight.parse_overrides(
        [
            'DefaultCount=3 CorsAllowOrigins="https://a.example.com,https://b.example.com" '
            "DefaultPrompt='a quiet room' WebhookUrls= "
            "ParameterKey=DefaultProvider,ParameterValue=photoroom"
        ]
    ) == {
        "DefaultCount": "3",
        "CorsAllowOrigins": "https://a.example.com,https://b.example.com",
        "DefaultPrompt": "a quiet room",
        "WebhookUrls": "",
        "DefaultProvider": "photoroom",
    }


@pytest.mark.parametrize("text", ["DefaultCount", "=3", 'DefaultPrompt="unclosed'])
def test_a_malformed_override_is_refused(text: str) -> None:
    with pytest.raises(preflight.ConfigError, match="parameter overrides"):
        preflight.parse_overrides([text])


def test_the_project_samconfig_names_each_environment_s_stack() -> None:
    default = preflight.read_samconfig(ROOT / "samconfig.toml", "default")
    dev = preflight.read_samconfig(ROOT / "samconfig.toml", "dev")

    assert default.stack_name == "backdrop"
    assert dev.stack_name == "backdrop-dev"
    assert dev.parameter_overrides["DefaultCount"] == "1"
    assert dev.region is None


def test_deploy_parameters_win_over_global_ones(tmp_path: Path) -> None:
    path = tmp_path / "samconfig.toml"
    path.write_text(
        '[x.global.parameters]\nstack_name = "a"\nregion = "eu-west-1"\n'
        '[x.deploy.parameters]\nstack_name = "b"\nparameter_overrides = ["DefaultCount=4"]\n'
    )

    config = preflight.read_samconfig(path, "x")

    assert (config.stack_name, config.region) == ("b", "eu-west-1")
    assert config.parameter_overrides == {"DefaultCount": "4"}


def test_an_unknown_environment_is_named_with_those_there() -> None:
    with pytest.raises(preflight.ConfigError, match=r"no environment \[prod\].*default, dev"):
        preflight.read_samconfig(ROOT / "samconfig.toml", "prod")


def test_values_layer_defaults_deployed_samconfig_then_the_command_line(
    template: Template,
) -> None:
    values = preflight.effective_values(
        template.body["Parameters"],
        [
            Layer(preflight.DEPLOYED, {"DefaultCount": "5", "JobTtlDays": "30"}),
            Layer("samconfig", {"DefaultCount": "4", "LogRetentionDays": "7"}),
            Layer("cli", {"LogRetentionDays": "14", "NotAParameter": "1"}),
        ],
    )

    assert values["DefaultCount"] == "4"
    assert values["JobTtlDays"] == "30"
    assert values["LogRetentionDays"] == "14"
    assert values["DefaultProvider"] == "picsart"  # the default
    assert values["ManageApiGatewayAccount"] == "true"
    assert "NotAParameter" not in values


# Parameter values.


def test_the_template_defaults_are_all_valid(template: Template) -> None:
    assert problems(template) == []


def test_the_dev_environment_s_values_are_valid(template: Template) -> None:
    dev = preflight.read_samconfig(ROOT / "samconfig.toml", "dev")

    assert problems(template, **dev.parameter_overrides) == []


@pytest.mark.parametrize(
    ("origins", "reason"),
    [
        ("https://a.example.com/path", "has a path"),
        ("a.example.com", "has no scheme: write https://a.example.com"),
        ("https://*.example.com", "has a wildcard"),
        ("https://a.example.com/", "ends with a slash"),
        ("https://a.example.com,*", "must stand alone"),
        ("https://a.example.com,", "is empty"),
        ("ftp://a.example.com", "must start with https:// or http://"),
        ("https://a.example.com:99999", "has a bad port"),
    ],
)
def test_a_bad_cors_origin_is_refused_with_what_is_accepted(
    template: Template, origins: str, reason: str
) -> None:
    found = problems(template, CorsAllowOrigins=origins)

    assert found, origins
    assert found[0].startswith("CorsAllowOrigins: ")
    assert reason in found[0]
    assert found[-1].strip().startswith("accepted: * alone, or comma-separated origins")


@pytest.mark.parametrize(
    "origins",
    ["*", "https://app.example.com", "https://a.example.com, http://localhost:3000"],
)
def test_good_cors_origins_are_accepted(template: Template, origins: str) -> None:
    assert problems(template, CorsAllowOrigins=origins) == []


def test_a_space_the_template_refuses_is_refused(template: Template) -> None:
    # The code would strip it; CloudFormation's AllowedPattern does not take it.
    found = problems(template, CorsAllowOrigins="https://a.example.com ,https://b.example.com")

    assert found
    assert found[0] == "CorsAllowOrigins: 'https://a.example.com ' has a space in it"


@pytest.mark.parametrize("name", ["PicsartApiUrl", "PhotoroomApiUrl"])
@pytest.mark.parametrize("url", ["http://genai-api.picsart.io/v1", "https://", "genai.example"])
def test_a_provider_url_must_be_https_with_a_host(template: Template, name: str, url: str) -> None:
    found = problems(template, **{name: url})

    assert len(found) == 1
    assert found[0].startswith(f"{name}=")
    assert "must be an https URL with a host" in found[0]


def test_webhook_urls_follow_the_functions_rule(template: Template) -> None:
    assert problems(template, WebhookUrls="") == []
    assert problems(template, WebhookUrls="https://a.example.com/h,https://b.example.com") == []
    found = problems(template, WebhookUrls="https://a.example.com/h,http://b.example.com/h")
    assert found[0] == "WebhookUrls: http://b.example.com/h must be an https URL"
    found = problems(template, WebhookUrls="https://10.0.0.1/h")
    assert "must name a host, not an IP address" in found[0]


def test_an_unknown_name_is_refused_with_its_source_and_a_suggestion(template: Template) -> None:
    found = problems(template, "samconfig.toml [dev]", DefautCount="3")

    assert found == [
        "DefautCount (in samconfig.toml [dev]) is not a parameter of template.yaml (did you "
        "mean DefaultCount?): sam deploy would drop it silently"
    ]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"DefaultCount": "11"}, "DefaultCount=11: must be between 1 and 10"),
        ({"DefaultCount": "0"}, "DefaultCount=0: must be between 1 and 10"),
        ({"DefaultCount": "two"}, "DefaultCount=two: must be a number"),
        ({"ApiReservedConcurrency": "-1"}, "ApiReservedConcurrency=-1: must be between 0 and"),
        ({"PicsartRequestsPerMinute": "0"}, "PicsartRequestsPerMinute=0: must be at least 1"),
        ({"LogRetentionDays": "2"}, "LogRetentionDays=2: must be one of 1, 3, 5, 7, 14"),
        ({"DefaultProvider": "dalle"}, "DefaultProvider=dalle: must be one of picsart, photoroom"),
        ({"DefaultPrompt": ""}, "DefaultPrompt='': must be at least 1 characters long"),
        ({"AlarmEmail": "ops"}, "AlarmEmail=ops: must match the template's AllowedPattern"),
        ({"PicsartUsdPerCredit": "-0.01"}, "PicsartUsdPerCredit=-0.01: must be at least 0"),
        ({"PhotoroomUsdPerImage": "free"}, "PhotoroomUsdPerImage=free: must be a number"),
        ({"PicsartCreditsPerImage": "-1"}, "PicsartCreditsPerImage=-1: must be at least 0"),
        ({"ImagesPerKeyPerDay": "-5"}, "ImagesPerKeyPerDay=-5: must be at least 0"),
        ({"BalanceCheckMinutes": "0"}, "BalanceCheckMinutes=0: must be between 1 and 60"),
    ],
)
def test_the_template_s_own_constraints_are_applied(
    template: Template, given: dict[str, str], expected: str
) -> None:
    found = problems(template, **given)

    assert len(found) == 1
    assert found[0].startswith(expected)


def test_a_number_the_template_takes_but_the_functions_refuse(template: Template) -> None:
    # JobTtlDays has no MaxValue: CloudFormation would deploy it, every cold start fail.
    found = problems(template, JobTtlDays="5000")

    assert found == [
        "JobTtlDays=5000: the functions would refuse it at every cold start (Input should be "
        "less than or equal to 3650)"
    ]


def test_inbox_presets_must_be_what_the_functions_read(template: Template) -> None:
    found = problems(template, InboxPresets="{not json")

    assert len(found) == 1
    assert found[0].startswith("InboxPresets='{not json': the functions would refuse it")


def test_the_result_lists_every_problem_and_the_fix(template: Template) -> None:
    layers = [Layer("--parameter-overrides", {"DefaultCount": "11", "Nope": "1"})]
    values = preflight.effective_values(template.body["Parameters"], layers)

    result = preflight.parameters_result(template, values, layers, "dev")

    assert result.status == "fail"
    assert result.summary == "2 problems in the parameter values"
    assert result.details[-1].startswith("fix: change them in samconfig.toml's [dev.deploy")


# Lambda concurrency.


@pytest.mark.parametrize(("quota", "minimum"), [(10, 10), (50, 50), (100, 100), (1000, 100)])
def test_lambda_keeps_100_unreserved_or_the_whole_of_a_smaller_quota(
    quota: int, minimum: int
) -> None:
    assert preflight.minimum_unreserved(quota) == minimum


def test_the_most_reservable_counts_the_api_function_s_own_reservation() -> None:
    assert preflight.most_reservable(Concurrency(10, 10)) == 0
    assert preflight.most_reservable(Concurrency(1000, 1000)) == 900
    assert preflight.most_reservable(Concurrency(1000, 700, api_reserved=50)) == 650
    assert preflight.most_reservable(Concurrency(1000, 80)) == 0


def test_a_reservation_over_the_limit_fails_naming_the_fixes() -> None:
    result = preflight.concurrency_result(
        60, Concurrency(150, 150), region="eu-west-1", config_env="dev"
    )

    assert result.status == "fail"
    assert result.summary == (
        "ApiReservedConcurrency=60 is more than this account allows (at most 50 here)"
    )
    message = "\n".join(result.details)
    assert "quota in eu-west-1 is 150, 150 unreserved" in message
    assert "below its minimum value of [100]" in message
    assert "`ApiReservedConcurrency=50` (or 0, none)" in message
    assert "[dev.deploy.parameters]" in message
    assert "--quota-code L-B99A9384" in message


def test_a_reservation_within_the_limit_passes() -> None:
    result = preflight.concurrency_result(
        50, Concurrency(150, 150), region="eu-west-1", config_env="dev"
    )

    assert result.status == "pass"


# API Gateway's CloudWatch role.


def test_api_gateway_verdicts() -> None:
    role = "arn:aws:iam::123456789012:role/logs"

    assert preflight.api_gateway_result("false", None, region="eu-west-1").status == "fail"
    assert preflight.api_gateway_result("false", role, region="eu-west-1").status == "pass"
    managed = preflight.api_gateway_result("true", role, region="eu-west-1")
    assert managed.status == "pass"
    assert f"it replaces the current {role}" in managed.summary


# The stack's state.


@pytest.mark.parametrize(
    ("status", "fix"),
    [
        ("ROLLBACK_COMPLETE", "make delete ENV=dev"),
        ("UPDATE_ROLLBACK_FAILED", "continue-update-rollback --stack-name backdrop-dev"),
        ("UPDATE_IN_PROGRESS", "wait for it to end"),
    ],
)
def test_a_stack_cloudformation_cannot_update_fails(status: str, fix: str) -> None:
    result = preflight.stack_result("backdrop-dev", DeployedStack(status, {}), config_env="dev")

    assert result.status == "fail"
    assert fix in "\n".join(result.details)


def test_a_new_or_settled_stack_passes() -> None:
    assert preflight.stack_result("s", None, config_env="dev").status == "pass"
    settled = preflight.stack_result("s", DeployedStack("UPDATE_COMPLETE", {}), config_env="dev")
    assert settled.status == "pass"


# The build.


def elf(machine: int) -> bytes:
    """An ELF header (64-bit, little-endian) for `machine`, enough for e_machine."""
    return b"\x7fELF\x02\x01\x01" + bytes(11) + machine.to_bytes(2, "little")


def build(tmp_path: Path, modules: dict[str, bytes]) -> Path:
    root = tmp_path / "build"
    layer = root / "DependenciesLayer" / "python"
    layer.mkdir(parents=True)
    (root / "template.yaml").write_text("Resources: {}\n")
    for name, content in modules.items():
        (layer / name).parent.mkdir(parents=True, exist_ok=True)
        (layer / name).write_bytes(content)
    return root


def test_a_layer_built_for_the_runtime_passes(tmp_path: Path) -> None:
    root = build(
        tmp_path,
        {
            "pydantic_core/_pydantic_core.cpython-313-aarch64-linux-gnu.so": elf(AARCH64),
            "PIL/_imaging.cpython-313-aarch64-linux-gnu.so": elf(AARCH64),
            "pillow.libs/libjpeg-1a2b3c.so.62.4.0": elf(AARCH64),
        },
    )

    result = preflight.build_result(root)

    assert result.status == "pass", result
    assert "built for Python 3.13 on arm64 (2 compiled modules" in result.summary


@pytest.mark.parametrize(
    ("name", "content", "built_for"),
    [
        ("_pydantic_core.cpython-311-x86_64-linux-gnu.so", b"", "CPython 3.11 on x86_64"),
        ("_pydantic_core.cpython-311-aarch64-linux-gnu.so", b"", "CPython 3.11 on aarch64"),
        ("_pydantic_core.cpython-313-x86_64-linux-gnu.so", b"", "CPython 3.13 on x86_64"),
        ("_pydantic_core.cpython-313-darwin.so", b"", "CPython 3.13 on darwin"),
        # Named right, but an x86_64 binary.
        ("_pydantic_core.cpython-313-aarch64-linux-gnu.so", elf(X86_64), "x86_64"),
    ],
)
def test_a_module_built_for_another_python_or_machine_fails(
    tmp_path: Path, name: str, content: bytes, built_for: str
) -> None:
    root = build(tmp_path, {f"pydantic_core/{name}": content})

    result = preflight.build_result(root)

    assert result.status == "fail"
    assert result.summary.startswith("DependenciesLayer was not built for Python 3.13 on arm64")
    assert f"pydantic_core/{name}: built for {built_for}" in result.details[0]
    assert "run `make build` with python3.13 on PATH" in result.details[-1]


def test_a_layer_with_no_compiled_module_is_incomplete(tmp_path: Path) -> None:
    result = preflight.build_result(build(tmp_path, {"httpx/__init__.py": b""}))

    assert result.status == "fail"
    assert "no compiled extension modules" in result.summary


def test_no_build_says_to_build_first(tmp_path: Path) -> None:
    missing = preflight.build_result(tmp_path / "nothing")
    (tmp_path / "half").mkdir()
    unfinished = preflight.build_result(tmp_path / "half")

    assert missing.status == unfinished.status == "fail"
    assert missing.details == unfinished.details == ("fix: run `make build` first",)


def test_the_layer_is_where_template_yaml_builds_it() -> None:
    # The build check looks for the layer's files where sam build puts them.
    layer = Template(TEMPLATE_PATH).resources[preflight.LAYER]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    makefile = (ROOT / "dependencies" / "Makefile").read_text()
    assert '--target "$(ARTIFACTS_DIR)/python"' in makefile


# The report.


def test_the_report_prints_a_line_per_check_and_exits_1_on_a_failure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import sys

    code = preflight.report(
        [
            preflight.passed("target", "stack s in eu-west-1"),
            preflight.failed("build", "no build in b", "fix: run `make build` first"),
        ],
        sys.stdout,
    )

    assert code == 1
    assert capsys.readouterr().out.splitlines() == [
        "PASS  target  stack s in eu-west-1",
        "FAIL  build   no build in b",
        "              fix: run `make build` first",
        "preflight: 1 of 2 checks failed (build): nothing was deployed",
    ]


# The functions' environment and the names made of the stack's.


def _values(template: Template, **given: str) -> dict[str, str]:
    return preflight.effective_values(template.body["Parameters"], [Layer("--x", given)])


def test_the_default_environment_fits_lambda_s_4_kb(template: Template) -> None:
    result = preflight.environment_result(
        template, _values(template), stack="backdrop", region="ap-southeast-2", config_env="dev"
    )
    assert result.status == "pass", result
    largest = max(size for size, _ in preflight.environment_sizes(
        template, _values(template), stack="backdrop", region="ap-southeast-2"
    ).values())  # fmt: skip
    # Resource names and ARNs alone take about half: what is left is for the parameters.
    assert 1500 < largest < 3000


def test_an_environment_over_4_kb_fails_naming_the_parameters_that_fill_it(
    template: Template,
) -> None:
    # Each value within its own MaxLength; together past Lambda's limit.
    hooks = ",".join(f"https://hooks.example.com/{i}/" + "x" * 180 for i in range(12))
    values = _values(template, WebhookUrls=hooks)
    assert preflight.parameter_problems(template, values, []) == []

    result = preflight.environment_result(
        template, values, stack="backdrop", region="eu-west-1", config_env="dev"
    )

    assert result.status == "fail"
    assert "Lambda takes at most 4,096" in result.summary
    assert result.details[0].startswith("the largest parameters in it: WebhookUrls (")
    assert "[dev.deploy.parameters]" in result.details[-1]


def test_a_stack_name_too_long_for_the_batch_state_machine_s_name_is_refused(
    template: Template,
) -> None:
    assert preflight._named_after_the_stack(template, "b" * 74) == []
    (problem,) = preflight._named_after_the_stack(template, "b" * 75)
    assert "BatchStateMachine is named " + "b" * 75 + "-batch (81 characters" in problem
    assert "at most 74 characters" in problem
