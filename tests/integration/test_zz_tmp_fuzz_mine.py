from hypothesis import given, settings, strategies as st
from tests.integration.test_model_fuzz import FUZZ_SETTINGS, check_answer, encode, wire  # noqa: F401
from tests.support.modelgen import OperationCase, request_strategy

OPS = ["PostCommentForComparedCommit", "PostCommentForPullRequest", "PostCommentReply", "GetComment",
       "UpdateComment", "DeleteCommentContent", "GetCommentsForComparedCommit", "GetCommentsForPullRequest",
       "PutCommentReaction", "GetCommentReactions", "PutRepositoryTriggers", "GetRepositoryTriggers",
       "TestRepositoryTriggers"]
CASES = st.sampled_from([OperationCase("codecommit", op) for op in OPS])

@settings(FUZZ_SETTINGS, max_examples=1500)
@given(data=st.data())
def test_mine(wire, data):
    case = data.draw(CASES)
    body = encode(data.draw(request_strategy(case.model), label="request"))
    check_answer(case, body, wire.post(case, body))
