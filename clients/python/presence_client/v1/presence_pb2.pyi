from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

ACTIVITY_KIND_CHAT: ActivityKind
ACTIVITY_KIND_SHOW: ActivityKind
ACTIVITY_KIND_UNSPECIFIED: ActivityKind
DESCRIPTOR: _descriptor.FileDescriptor
NOTICE_KIND_PING_REJECTED: NoticeKind
NOTICE_KIND_UNSPECIFIED: NoticeKind
NOTICE_KIND_UPSTREAM_UNAVAILABLE: NoticeKind

class Activity(_message.Message):
    __slots__ = ["kind"]
    KIND_FIELD_NUMBER: _ClassVar[int]
    kind: ActivityKind
    def __init__(self, kind: _Optional[_Union[ActivityKind, str]] = ...) -> None: ...

class CreditsUpdate(_message.Message):
    __slots__ = ["credits"]
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    credits: int
    def __init__(self, credits: _Optional[int] = ...) -> None: ...

class CreditsUpdated(_message.Message):
    __slots__ = ["message", "success"]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    message: str
    success: bool
    def __init__(self, success: bool = ..., message: _Optional[str] = ...) -> None: ...

class GetRoomRequest(_message.Message):
    __slots__ = ["performer_id"]
    PERFORMER_ID_FIELD_NUMBER: _ClassVar[int]
    performer_id: int
    def __init__(self, performer_id: _Optional[int] = ...) -> None: ...

class GetRoomResponse(_message.Message):
    __slots__ = ["viewers"]
    VIEWERS_FIELD_NUMBER: _ClassVar[int]
    viewers: _containers.RepeatedCompositeFieldContainer[Viewer]
    def __init__(self, viewers: _Optional[_Iterable[_Union[Viewer, _Mapping]]] = ...) -> None: ...

class Join(_message.Message):
    __slots__ = ["credits", "customer_id", "ip_address", "nickname", "performer_id", "registered", "resume_token"]
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    NICKNAME_FIELD_NUMBER: _ClassVar[int]
    PERFORMER_ID_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    credits: int
    customer_id: int
    ip_address: str
    nickname: str
    performer_id: int
    registered: bool
    resume_token: str
    def __init__(self, performer_id: _Optional[int] = ..., nickname: _Optional[str] = ..., customer_id: _Optional[int] = ..., ip_address: _Optional[str] = ..., registered: bool = ..., credits: _Optional[int] = ..., resume_token: _Optional[str] = ...) -> None: ...

class Joined(_message.Message):
    __slots__ = ["nickname", "resume_token", "resumed", "session_id"]
    NICKNAME_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    nickname: str
    resume_token: str
    resumed: bool
    session_id: str
    def __init__(self, nickname: _Optional[str] = ..., session_id: _Optional[str] = ..., resume_token: _Optional[str] = ..., resumed: bool = ...) -> None: ...

class Leave(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class Left(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class Notice(_message.Message):
    __slots__ = ["kind", "message"]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    kind: NoticeKind
    message: str
    def __init__(self, kind: _Optional[_Union[NoticeKind, str]] = ..., message: _Optional[str] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ["activity", "credits", "join", "leave"]
    ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    JOIN_FIELD_NUMBER: _ClassVar[int]
    LEAVE_FIELD_NUMBER: _ClassVar[int]
    activity: Activity
    credits: CreditsUpdate
    join: Join
    leave: Leave
    def __init__(self, join: _Optional[_Union[Join, _Mapping]] = ..., activity: _Optional[_Union[Activity, _Mapping]] = ..., credits: _Optional[_Union[CreditsUpdate, _Mapping]] = ..., leave: _Optional[_Union[Leave, _Mapping]] = ...) -> None: ...

class SessionResponse(_message.Message):
    __slots__ = ["credits_updated", "joined", "left", "notice"]
    CREDITS_UPDATED_FIELD_NUMBER: _ClassVar[int]
    JOINED_FIELD_NUMBER: _ClassVar[int]
    LEFT_FIELD_NUMBER: _ClassVar[int]
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    credits_updated: CreditsUpdated
    joined: Joined
    left: Left
    notice: Notice
    def __init__(self, joined: _Optional[_Union[Joined, _Mapping]] = ..., credits_updated: _Optional[_Union[CreditsUpdated, _Mapping]] = ..., notice: _Optional[_Union[Notice, _Mapping]] = ..., left: _Optional[_Union[Left, _Mapping]] = ...) -> None: ...

class UpdateCreditsRequest(_message.Message):
    __slots__ = ["credits", "customer_id"]
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    credits: int
    customer_id: int
    def __init__(self, customer_id: _Optional[int] = ..., credits: _Optional[int] = ...) -> None: ...

class UpdateCreditsResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class Viewer(_message.Message):
    __slots__ = ["customer_id", "joined_at", "nickname", "registered"]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    JOINED_AT_FIELD_NUMBER: _ClassVar[int]
    NICKNAME_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    customer_id: int
    joined_at: _timestamp_pb2.Timestamp
    nickname: str
    registered: bool
    def __init__(self, nickname: _Optional[str] = ..., customer_id: _Optional[int] = ..., registered: bool = ..., joined_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ActivityKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class NoticeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
