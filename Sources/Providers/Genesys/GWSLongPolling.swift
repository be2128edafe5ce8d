import MutewardenBayeux
import MutewardenHTTP
import MutewardenJSON

/// Bayeux over HTTP long-polling, the transport GWS 8.5 offers: each batch is one POST of a JSON
/// array to the CometD endpoint, and the answer is a JSON array.
struct GWSLongPollingTransport: BayeuxTransport {
    let session: GWSSession
    let path: String
    let budget: HTTPBudget
    let connectionType = "long-polling"
    /// A reply larger than this is refused: the HTTP client caps bodies anyway; this names it.
    let maximumMessages = 10_000

    func exchange(_ batch: [JSONValue], timeout: Duration) async throws -> BayeuxMessages {
        let response = try await session.send(.post, path, json: JSONValue.array(batch).serialized, timeout: timeout, budget: budget)
        guard response.isSuccess else { throw BayeuxHTTPStatus(status: response.status) }
        let body = try JSONValue.parse(response.body)
        guard let messages = body.array else { throw BayeuxFailure.malformedReply("the reply is not a JSON array") }
        guard messages.count <= maximumMessages else {
            throw BayeuxFailure.malformedReply("\(messages.count) messages in one reply")
        }
        return BayeuxMessages(messages, byteCount: response.body.count)
    }
}
