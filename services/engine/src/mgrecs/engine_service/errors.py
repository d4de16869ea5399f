"""AWS rest-json errors: the shape botocore turns into a `ClientError` with the right code."""

from fastapi import Request
from fastapi.responses import JSONResponse


class AwsError(Exception):
    """An error answer as AWS gives it: HTTP status, error code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def invalid_input(message: str) -> AwsError:
    return AwsError(400, "InvalidInputException", message)


def not_found(message: str) -> AwsError:
    return AwsError(404, "ResourceNotFoundException", message)


def too_large(limit: int) -> JSONResponse:
    """A body over MGRECS_MAX_REQUEST_BYTES (mgrecs.common.body_limit), refused unread."""
    message = f"Request body larger than {limit} bytes (MGRECS_MAX_REQUEST_BYTES)"
    return error_response(AwsError(413, "RequestEntityTooLargeException", message))


def error_response(error: AwsError) -> JSONResponse:
    """botocore reads the code from `x-amzn-ErrorType` and the text from `message`."""
    return JSONResponse(
        status_code=error.status,
        content={"message": error.message},
        headers={"x-amzn-ErrorType": error.code},
    )


async def handle_aws_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AwsError)
    return error_response(exc)
