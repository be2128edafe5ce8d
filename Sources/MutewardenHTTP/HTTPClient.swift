import MutewardenModel
// The libcurl HTTP client lands here (issue: transports).
