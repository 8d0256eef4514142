from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorInfo(_message.Message):
    __slots__ = ("error_code", "tool_error_info")
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    TOOL_ERROR_INFO_FIELD_NUMBER: _ClassVar[int]
    error_code: str
    tool_error_info: ToolErrorInfo
    def __init__(self, error_code: _Optional[str] = ..., tool_error_info: _Optional[_Union[ToolErrorInfo, _Mapping]] = ...) -> None: ...

class ToolErrorInfo(_message.Message):
    __slots__ = ("execution_id", "tool_error_message", "tool_error_code")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TOOL_ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    tool_error_message: str
    tool_error_code: str
    def __init__(self, execution_id: _Optional[str] = ..., tool_error_message: _Optional[str] = ..., tool_error_code: _Optional[str] = ...) -> None: ...
