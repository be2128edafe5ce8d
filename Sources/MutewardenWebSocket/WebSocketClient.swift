import MutewardenModel
// The libwebsockets client lands here (issue: transports).
