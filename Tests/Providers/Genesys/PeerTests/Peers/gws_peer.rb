#!/usr/bin/env ruby
# A fake Genesys Web Services (GWS API v2) for the GWS provider's tests, in one Ruby process:
#
# - a real Faye Bayeux server (Debian ruby-faye, on thin) mounted at /api/v2/notifications, with
#   the long-polling and websocket connection types (faye-websocket's thin adapter is loaded);
# - the GWS REST API as documented (Basic auth, JSESSIONID session, CSRF token headers,
#   POST /api/v2/me/calls/{id} operations, GET /api/v2/me/calls), which publishes the confirming
#   CallStateChangeMessage through Faye's server-side client, as GWS does after T-Server answers;
# - a control API for tests under /test/ (no auth): calls, scripted answers, session and CSRF
#   expiry, raw publishing, logs, dropping the Bayeux clients.
#
# One process, so the REST side publishes into the same Faye engine the client is connected to.
# Everything listens on 127.0.0.1 only. Once listening it prints "port N" on stdout.
#
#   ruby gws_peer.rb [--port N] [--user agent1] [--password secret] [--timeout 5]
#                    [--lifetime 600] [--phone-number 3001] [--exit-on-stdin-eof]
#
# The control API is described in docs/providers/genesys.md ("Test peers").

require 'optparse'
require 'json'
require 'securerandom'
require 'set'
require 'base64'
require 'eventmachine'
require 'rack'
require 'thin'
require 'faye'
require 'faye/websocket'

# Faye answers WebSocket upgrades through faye-websocket, which needs its adapter for the server.
Faye::WebSocket.load_adapter('thin')

options = {
  port: 0, user: 'agent1', password: 'agent-secret', timeout: 5, lifetime: 600,
  phone_number: '3001', exit_on_stdin_eof: false
}
OptionParser.new do |parser|
  parser.on('--port N', Integer, 'port on 127.0.0.1 (0: ephemeral)') { |v| options[:port] = v }
  parser.on('--user NAME', 'Basic auth user name') { |v| options[:user] = v }
  parser.on('--password SECRET', 'Basic auth password') { |v| options[:password] = v }
  parser.on('--timeout SECONDS', Float, 'Faye /meta/connect timeout') { |v| options[:timeout] = v }
  parser.on('--lifetime SECONDS', Float, 'exit after this long whatever happens') { |v| options[:lifetime] = v }
  parser.on('--phone-number DN', "the agent's DN in notifications") { |v| options[:phone_number] = v }
  parser.on('--exit-on-stdin-eof', 'exit when standard input closes') { options[:exit_on_stdin_eof] = true }
end.parse!

STATUS_MESSAGES = {
  1 => 'Required parameter missing', 2 => 'Parameter not valid for current state', 3 => 'Forbidden',
  4 => 'Internal error', 5 => 'No permission', 6 => 'Resource not found', 7 => 'Partial success',
  8 => 'Change password demanded', 9 => 'Processing incomplete', 10 => 'Input validation error',
  11 => 'Read-only property', 12 => 'Unable to retrieve resource', 13 => 'Unable to create resource',
  14 => 'Unable to delete resource', 15 => 'Unable to update resource', 16 => 'Unable to assign resource',
  17 => 'Unable to unassign resource', 18 => 'Resource already exists', 19 => 'Resource already in use',
  20 => 'Not authenticated'
}.freeze

# What each supported operation does to the call once "T-Server" confirms it, and the
# notificationType GWS announces it with (GWSdoc CallsMuteCall, CallRecordingPauseCallRecording).
OPERATIONS = {
  'MuteCall' => ['StatusChange', ->(call) { call['mute'] = 'On' }],
  'UnmuteCall' => ['StatusChange', ->(call) { call['mute'] = 'Off' }],
  'PauseCallRecording' => ['CallRecordingStateChange', ->(call) { GWSPeer.record(call, 'Paused', 'PAUSED') }],
  'ResumeCallRecording' => ['CallRecordingStateChange', ->(call) { GWSPeer.record(call, 'Recording', 'ON') }],
  'StartCallRecording' => ['CallRecordingStateChange', ->(call) { GWSPeer.record(call, 'Recording', 'ON') }],
  'StopCallRecording' => ['CallRecordingStateChange', ->(call) { GWSPeer.record(call, 'Stopped', 'OFF') }]
}.freeze

# Keys of a control-API call body that steer the fake rather than being call fields.
CONTROL_KEYS = %w[notify notificationType phoneNumber capabilities].freeze

CALLS_CHANNEL = '/v2/me/calls'.freeze
NOTIFICATIONS_PATH = '/api/v2/notifications'.freeze
JSON_TYPE = 'application/json;charset=UTF-8'.freeze
MAX_LOG = 2000
MAX_DELAY_MS = 60_000

# Watches the Bayeux traffic of remote clients (the server-side client has no request): counts
# meta messages and connection types, and logs which GWS credentials each message carried.
class BayeuxWatcher
  attr_reader :remote_clients, :subscriptions, :meta_counts, :connection_types, :log

  def initialize(peer)
    @peer = peer
    @remote_clients = Set.new
    @subscriptions = Hash.new { |hash, key| hash[key] = Set.new }
    @meta_counts = Hash.new(0)
    @connection_types = Hash.new(0)
    @log = []
  end

  def incoming(message, request, callback)
    if request
      channel = message['channel'].to_s
      @meta_counts[channel] += 1 if channel.start_with?('/meta/')
      @connection_types[message['connectionType']] += 1 if message['connectionType']
      transport = Faye::WebSocket.websocket?(request.env) ? 'websocket' : 'http'
      entry = { 'channel' => channel, 'clientId' => message['clientId'], 'transport' => transport,
                'at' => Time.now.to_f }
      entry['connectionType'] = message['connectionType'] if message['connectionType']
      entry['subscription'] = message['subscription'] if message['subscription']
      @log << entry.merge(@peer.credentials_seen(request.env))
      @log.shift while @log.size > MAX_LOG
    end
    callback.call(message)
  end

  def outgoing(message, request, callback)
    if request && message['channel'] == '/meta/handshake' && message['successful'] && message['clientId']
      @remote_clients << message['clientId']
    end
    # Advice a real server would rarely send (1e300, ten minutes), over either connection type.
    if message['channel'] == '/meta/connect' && message['successful'] && !@peer.advice_overrides.empty?
      message['advice'] = (message['advice'] || {}).merge(@peer.advice_overrides.shift)
    end
    callback.call(message)
  end

  def subscribed(client_id, channel)
    @subscriptions[channel] << client_id if @remote_clients.include?(client_id)
  end

  def unsubscribed(client_id, channel)
    @subscriptions[channel].delete(client_id)
  end

  def gone(client_id)
    @remote_clients.delete(client_id)
    @subscriptions.each_value { |ids| ids.delete(client_id) }
  end

  def summary
    {
      'clients' => @remote_clients.to_a,
      'subscriptions' => @subscriptions.map { |channel, ids| [channel, ids.size] }.to_h,
      'meta' => @meta_counts,
      'connectionTypes' => @connection_types,
      'messages' => @log
    }
  end
end

# In front of Faye: hands the next long-polling /meta/connect a reply the test wrote byte for
# byte (malformed JSON, an error, an empty body...), which Faye itself could never send.
class RawConnectReplies
  def initialize(app, peer)
    @app = app
    @peer = peer
  end

  def call(env)
    if !@peer.raw_connect_replies.empty? && env['REQUEST_METHOD'] == 'POST' &&
       env['PATH_INFO'].start_with?(NOTIFICATIONS_PATH) && connect_request?(env)
      reply = @peer.raw_connect_replies.shift
      body = reply['body'].to_s
      return [reply['status'] || 200,
              { 'Content-Type' => reply['contentType'] || JSON_TYPE, 'Content-Length' => body.bytesize.to_s }, [body]]
    end
    @app.call(env)
  end

  private

  def connect_request?(env)
    input = env['rack.input']
    body = input.read
    input.rewind
    text = if (env['CONTENT_TYPE'] || '').start_with?('application/json')
             body
           else
             Rack::Utils.parse_query(body)['message'] || Rack::Request.new(env).params['message']
           end
    [JSON.parse(text.to_s)].flatten.any? { |m| m.is_a?(Hash) && m['channel'] == '/meta/connect' }
  rescue JSON::ParserError, TypeError
    false
  end
end

class GWSPeer
  attr_reader :raw_connect_replies, :advice_overrides
  attr_accessor :bayeux, :watcher

  def self.record(call, state, gsip)
    call['recordingState'] = state
    call['userData'] = (call['userData'] || {}).merge('GSIP_RECORD' => gsip)
  end

  def initialize(options)
    @options = options
    @calls = {}          # id => { 'call' => {...}, 'phoneNumber' => ..., 'capabilities' => nil | [...] }
    @sessions = {}       # JSESSIONID => CSRF token
    @script = []         # scripted answers, first match wins
    @requests = []       # every REST request, with the credentials it carried
    @raw_connect_replies = []
    @advice_overrides = []
    @csrf = true
    @enforce_capabilities = true
    @phone_number = options[:phone_number]
    @device_id = SecureRandom.uuid
  end

  def call(env)
    request = Rack::Request.new(env)
    path = request.path_info
    if path.start_with?('/test/')
      control(request, path)
    elsif path.start_with?('/api/v2/')
      rest(request, path)
    else
      json(404, 'statusCode' => 6, 'statusMessage' => "No resource at #{path}")
    end
  rescue StandardError => e
    warn "gws_peer: #{e.class}: #{e.message}\n#{e.backtrace.first(5).join("\n")}"
    json(500, 'error' => "#{e.class}: #{e.message}")
  end

  # --- credentials ---------------------------------------------------------------------------

  def cookies(env)
    (env['HTTP_COOKIE'] || '').split(/;\s*/).map { |pair| pair.split('=', 2) }.to_h
  end

  def basic_auth(env)
    header = env['HTTP_AUTHORIZATION']
    return 'none' unless header
    return 'invalid' unless header =~ /\ABasic\s+(.+)\z/i
    user, password = Base64.decode64(Regexp.last_match(1)).split(':', 2)
    user == @options[:user] && password == @options[:password] ? 'valid' : 'invalid'
  end

  # What a request carried, for the logs: the tests check the client sends cookie and CSRF token.
  def credentials_seen(env)
    session_id = cookies(env)['JSESSIONID']
    token = env['HTTP_X_CSRF_TOKEN']
    session = if session_id.nil? then 'none' elsif @sessions.key?(session_id) then 'valid' else 'unknown' end
    csrf = if token.nil? then 'missing'
           elsif session_id && @sessions[session_id] == token then 'valid'
           else 'invalid' end
    { 'cookie' => !session_id.nil?, 'session' => session, 'csrf' => csrf, 'basicAuth' => basic_auth(env) }
  end

  # --- the GWS REST API ------------------------------------------------------------------------

  def rest(request, path)
    env = request.env
    seen = credentials_seen(env)
    entry = { 'method' => request.request_method, 'path' => path, 'at' => Time.now.to_f }.merge(seen)
    body_text = request.body ? request.body.read : ''
    entry['body'] = body_text unless body_text.empty?
    if request.post? && path =~ %r{\A/api/v2/me/calls/([^/]+)\z}
      entry['callId'] = Regexp.last_match(1)
      name = (JSON.parse(body_text)['operationName'] rescue nil)
      entry['operationName'] = name if name.is_a?(String)
    end
    respond = lambda do |status, headers, payload|
      entry['httpStatus'] = status
      entry['statusCode'] = payload['statusCode'] if payload.is_a?(Hash)
      log_request(entry)
      [status, headers, payload]
    end

    unsafe = %w[POST PUT DELETE PATCH].include?(request.request_method)
    # Spring Security's order: the CSRF filter runs before authentication, so a POST without a
    # valid token is refused with 403 whatever its credentials.
    if unsafe && @csrf && seen['csrf'] != 'valid'
      return finish(*respond.call(403, {}, 'statusCode' => 3, 'statusMessage' => 'Missing or invalid Csrf token'))
    end
    authenticated = seen['basicAuth'] == 'valid' || (seen['basicAuth'] == 'none' && seen['session'] == 'valid')
    unless authenticated
      return finish(*respond.call(401, { 'WWW-Authenticate' => 'Basic realm="GWS"' },
                                  'statusCode' => 20, 'statusMessage' => 'Access denied: not authenticated'))
    end

    headers = {}
    session_id = cookies(env)['JSESSIONID']
    unless @sessions.key?(session_id)
      session_id = SecureRandom.hex(16).upcase
      @sessions[session_id] = SecureRandom.uuid
      headers['Set-Cookie'] = "JSESSIONID=#{session_id}; Path=/; HttpOnly"
    end
    if request.get? && @csrf
      headers['X-CSRF-HEADER'] = 'X-CSRF-TOKEN'
      headers['X-CSRF-TOKEN'] = @sessions[session_id]
    end

    if request.get? && path == '/api/v2/me'
      scripted_or(request, 'GET /api/v2/me', nil, headers, respond) do
        [200, 'statusCode' => 0, 'user' => user_resource(request)]
      end
    elsif request.get? && path == '/api/v2/me/calls'
      scripted_or(request, 'GET /api/v2/me/calls', nil, headers, respond) do
        [200, 'statusCode' => 0, 'calls' => @calls.keys.map { |id| render_call(id, request) }]
      end
    elsif request.post? && path =~ %r{\A/api/v2/me/calls/([^/]+)\z}
      operation(request, Regexp.last_match(1), body_text, entry, headers, respond)
    else
      finish(*respond.call(404, headers, 'statusCode' => 6, 'statusMessage' => "No resource at #{path}"))
    end
  end

  def user_resource(request)
    {
      'id' => 'b2ea5c5e7c1a4cd1a1e2b6cf63d0a001', 'userName' => @options[:user], 'firstName' => 'Test',
      'lastName' => 'Agent', 'roles' => ['ROLE_AGENT'], 'enabledChannels' => ['voice'],
      'uri' => "#{base_url(request)}/api/v2/users/b2ea5c5e7c1a4cd1a1e2b6cf63d0a001",
      'path' => '/users/b2ea5c5e7c1a4cd1a1e2b6cf63d0a001'
    }
  end

  def operation(request, call_id, body_text, entry, headers, respond)
    body = begin
      JSON.parse(body_text)
    rescue JSON::ParserError
      nil
    end
    name = body.is_a?(Hash) ? body['operationName'] : nil
    unless name.is_a?(String)
      return finish(*respond.call(200, headers, 'statusCode' => 1, 'statusMessage' => 'Required parameter missing: operationName'))
    end

    scripted_or(request, name, call_id, headers, respond) do |confirm_delay|
      stored = @calls[call_id]
      if stored.nil?
        [200, 'statusCode' => 6, 'statusMessage' => "Call #{call_id} not found"]
      elsif !OPERATIONS.key?(name)
        [200, 'statusCode' => 10, 'statusMessage' => "The fake does not implement #{name}"]
      elsif @enforce_capabilities && !capabilities_of(call_id).include?(name)
        [200, 'statusCode' => 2, 'statusMessage' => "#{name} is not valid in state #{stored['call']['state']}"]
      else
        confirm_later(call_id, name, confirm_delay, base_url(request))
        [200, 'statusCode' => 0]
      end
    end
  end

  # The next scripted answer for this operation and call if there is one, else the block's
  # (status, payload). A block is given the confirmation delay of a scripted "accept".
  def scripted_or(request, operation, call_id, headers, respond)
    index = @script.index do |s|
      (s['operation'].nil? || s['operation'] == operation) && (s['callId'].nil? || s['callId'] == call_id)
    end
    answer = index && @script.delete_at(index)
    delay = [[answer ? answer['delayMs'].to_i : 0, 0].max, MAX_DELAY_MS].min
    if answer.nil?
      status, payload = yield(0)
      return finish(*respond.call(status, headers, payload))
    end

    http_status = answer['httpStatus'] || 200
    if http_status != 200
      body = answer['body'] || "<html><body><h1>HTTP #{http_status}</h1></body></html>"
      content_type = answer['contentType'] || 'text/html'
      return finish(*respond.call(http_status, headers.merge('Content-Type' => content_type), body), delay, request)
    end
    code = answer['statusCode'] || 0
    if answer.key?('body')
      status, payload = 200, answer['body']
    elsif code.zero? && answer.fetch('confirm', true)
      # A scripted accept goes through the fake's own answer (unknown call, capabilities), late
      # (delayMs) or confirmed late (confirmDelayMs).
      status, payload = yield([[answer['confirmDelayMs'].to_i, 0].max, MAX_DELAY_MS].min)
    else
      status = 200
      payload = { 'statusCode' => code }
      payload['statusMessage'] = answer['statusMessage'] || STATUS_MESSAGES[code] || 'Error' unless code.zero?
    end
    finish(*respond.call(status, headers, payload), delay, request)
  end

  def confirm_later(call_id, name, delay_ms, base)
    confirm = lambda do
      next unless @calls.key?(call_id) # ended meanwhile: T-Server has nothing to confirm
      notification_type, change = OPERATIONS[name]
      change.call(@calls[call_id]['call'])
      publish_call(call_id, notification_type, base)
    end
    delay_ms.positive? ? EM.add_timer(delay_ms / 1000.0, &confirm) : EM.next_tick(&confirm)
  end

  # --- calls -----------------------------------------------------------------------------------

  def capabilities_of(call_id)
    stored = @calls[call_id]
    return stored['capabilities'] if stored['capabilities']
    call = stored['call']
    case call['state']
    when 'Established'
      caps = %w[AttachUserData UpdateUserData DeleteUserData Hangup SendDtmf Hold]
      caps << (call['mute'] == 'On' ? 'UnmuteCall' : 'MuteCall')
      caps + case call['recordingState']
             when 'Recording' then %w[PauseCallRecording StopCallRecording]
             when 'Paused' then %w[ResumeCallRecording StopCallRecording]
             else %w[StartCallRecording]
             end
    when 'Held' then %w[AttachUserData UpdateUserData DeleteUserData Hangup Retrieve]
    when 'Ringing' then %w[Answer AttachUserData UpdateUserData DeleteUserData]
    when 'Dialing' then %w[AttachUserData UpdateUserData DeleteUserData Hangup]
    else []
    end
  end

  def render_call(call_id, request_or_base)
    base = request_or_base.is_a?(String) ? request_or_base : base_url(request_or_base)
    stored = @calls[call_id]
    call = stored['call'].dup
    call['capabilities'] = capabilities_of(call_id)
    call['deviceUri'] ||= "#{base}/api/v2/devices/#{@device_id}"
    call['uri'] ||= "#{base}/api/v2/me/calls/#{call_id}"
    call
  end

  def notification(call_id, notification_type, base)
    {
      'messageType' => 'CallStateChangeMessage', 'notificationType' => notification_type,
      'phoneNumber' => @calls[call_id]['phoneNumber'] || @phone_number,
      'call' => render_call(call_id, base)
    }
  end

  def publish_call(call_id, notification_type, base)
    publish(CALLS_CHANNEL, notification(call_id, notification_type, base))
  end

  def publish(channel, data)
    @bayeux.get_client.publish(channel, data)
  end

  def new_call(fields)
    id = fields['id'] || "00#{SecureRandom.alphanumeric(30).upcase}"
    {
      'id' => id, 'callUuid' => id, 'connId' => SecureRandom.hex(8), 'state' => 'Established',
      'callType' => 'Inbound', 'ani' => '5551234', 'dnis' => '3002', 'duration' => '0',
      'mute' => 'Off', 'recordingState' => 'Recording',
      'participants' => [{ 'digits' => '5551234', 'e164Number' => '', 'formattedPhoneNumber' => '5551234',
                           'phoneNumber' => '5551234' }],
      'path' => "/calls/#{id}", 'monitoredUserMuted' => false, 'monitoring' => false,
      'supervisorListeningIn' => false
    }
  end

  # Call fields of a control body merged into a call; a null removes the field (after
  # DeleteUserData GWS sends the call without userData).
  def merge_fields(call, body)
    body.each do |key, value|
      next if CONTROL_KEYS.include?(key) || key == 'id'
      value.nil? ? call.delete(key) : call[key] = value
    end
  end

  def steer(stored, body)
    stored['phoneNumber'] = body['phoneNumber'] if body.key?('phoneNumber')
    stored['capabilities'] = body['capabilities'] if body.key?('capabilities')
  end

  def create_call(request, body)
    call = new_call(body)
    id = call['id']
    return json(409, 'error' => "call #{id} exists") if @calls.key?(id)
    merge_fields(call, body)
    @calls[id] = { 'call' => call, 'phoneNumber' => nil, 'capabilities' => nil }
    steer(@calls[id], body)
    publish_call(id, body['notificationType'] || 'StatusChange', base_url(request)) if body.fetch('notify', true)
    json(201, render_call(id, request))
  end

  def update_call(request, id, body)
    return json(404, 'error' => "no call #{id}") unless @calls.key?(id)
    merge_fields(@calls[id]['call'], body)
    steer(@calls[id], body)
    fields = body.keys - CONTROL_KEYS
    default_type = fields == ['userData'] ? 'AttachedDataChanged' : 'StatusChange'
    publish_call(id, body['notificationType'] || default_type, base_url(request)) if body.fetch('notify', true)
    json(200, render_call(id, request))
  end

  def end_call(request, id, body)
    return json(404, 'error' => "no call #{id}") unless @calls.key?(id)
    @calls[id]['call']['state'] = body['state'] || 'Released'
    publish_call(id, body['notificationType'] || 'StatusChange', base_url(request)) if body.fetch('notify', true)
    ended = render_call(id, request)
    @calls.delete(id)
    json(200, ended)
  end

  # --- the control API -------------------------------------------------------------------------

  def control(request, path)
    body = control_body(request)
    return json(400, 'error' => 'the body must be a JSON object') unless body.is_a?(Hash)
    method = request.request_method
    case [method, path]
    in ['GET', '/test/health']
      json(200, 'ok' => true, 'pid' => Process.pid)
    in ['GET', '/test/calls']
      json(200, 'calls' => @calls.keys.map { |id| render_call(id, request) })
    in ['POST', '/test/calls']
      create_call(request, body)
    in ['PATCH' | 'POST', %r{\A/test/calls/([^/]+)\z}]
      update_call(request, path.split('/').last, body)
    in ['DELETE', %r{\A/test/calls/([^/]+)\z}]
      end_call(request, path.split('/').last, body)
    in ['POST', '/test/script']
      entries = body['responses'] || [body.reject { |k, _| %w[operation callId].include?(k) }]
      entries.each { |e| @script << { 'operation' => body['operation'], 'callId' => body['callId'] }.merge(e) }
      json(200, 'script' => @script)
    in ['GET', '/test/script']
      json(200, 'script' => @script)
    in ['DELETE', '/test/script']
      @script.clear
      json(200, 'script' => @script)
    in ['GET', '/test/requests']
      json(200, 'requests' => @requests)
    in ['DELETE', '/test/requests']
      @requests.clear
      json(200, 'requests' => @requests)
    in ['POST', '/test/csrf/rotate']
      @sessions.each_key { |id| @sessions[id] = SecureRandom.uuid }
      json(200, 'sessions' => @sessions.size)
    in ['POST', '/test/sessions/expire']
      count = @sessions.size
      @sessions.clear
      json(200, 'expired' => count)
    in ['POST', '/test/config']
      @csrf = body['csrf'] if body.key?('csrf')
      @enforce_capabilities = body['enforceCapabilities'] if body.key?('enforceCapabilities')
      @phone_number = body['phoneNumber'] if body.key?('phoneNumber')
      # A password rotated on the platform: the old one is refused from now on.
      @options[:password] = body['password'] if body.key?('password')
      json(200, 'csrf' => @csrf, 'enforceCapabilities' => @enforce_capabilities, 'phoneNumber' => @phone_number)
    in ['POST', '/test/publish']
      raw_publish(body)
    in ['GET', '/test/bayeux']
      json(200, @watcher.summary)
    in ['POST', '/test/bayeux/drop-clients']
      dropped = @watcher.remote_clients.to_a
      dropped.each { |client_id| @bayeux_server.engine.destroy_client(client_id) }
      json(200, 'dropped' => dropped)
    in ['POST', '/test/bayeux/advice']
      (body['count'] || 1).times { @advice_overrides << body['advice'] }
      json(200, 'pending' => @advice_overrides.size)
    in ['POST', '/test/bayeux/raw-connect-reply']
      @raw_connect_replies << body
      json(200, 'pending' => @raw_connect_replies.size)
    else
      json(404, 'error' => "no control endpoint #{method} #{path}")
    end
  end

  def control_body(request)
    text = request.body ? request.body.read : ''
    text.strip.empty? ? {} : JSON.parse(text)
  rescue JSON::ParserError
    nil
  end

  # Publishes any data (a GWS message, an unknown notificationType, garbage fields) through Faye,
  # `count` times (duplicates), padded with a `padding` string of `padBytes` bytes (oversized).
  def raw_publish(body)
    return json(400, 'error' => 'data is required') unless body.key?('data')
    data = body['data']
    pad = body['padBytes'].to_i
    data = data.merge('padding' => 'x' * pad) if pad.positive? && data.is_a?(Hash)
    count = body.fetch('count', 1).to_i.clamp(0, 1000)
    count.times { publish(body['channel'] || CALLS_CHANNEL, data) }
    json(200, 'published' => count)
  end

  attr_writer :bayeux_server

  # --- helpers ---------------------------------------------------------------------------------

  def log_request(entry)
    @requests << entry
    @requests.shift while @requests.size > MAX_LOG
  end

  def base_url(request)
    "http://#{request.env['HTTP_HOST'] || "127.0.0.1:#{request.port}"}"
  end

  # With a Content-Length thin keeps the connection alive, as GWS does for the client's reuse.
  def json(status, payload, headers = {})
    body = JSON.generate(payload)
    [status, { 'Content-Type' => JSON_TYPE, 'Content-Length' => body.bytesize.to_s }.merge(headers), [body]]
  end

  # A Rack response for a REST answer, now or after `delay_ms` through thin's async callback.
  def finish(status, headers, payload, delay_ms = 0, request = nil)
    body = payload.is_a?(String) ? payload : JSON.generate(payload)
    response = [status, { 'Content-Type' => JSON_TYPE, 'Content-Length' => body.bytesize.to_s }.merge(headers), [body]]
    return response unless delay_ms.positive? && request && request.env['async.callback']
    callback = request.env['async.callback']
    EM.add_timer(delay_ms / 1000.0) { callback.call(response) }
    [-1, {}, []]
  end
end

peer = GWSPeer.new(options)
bayeux = Faye::RackAdapter.new(peer, mount: NOTIFICATIONS_PATH, timeout: options[:timeout])
watcher = BayeuxWatcher.new(peer)
bayeux.add_extension(watcher)
bayeux.bind(:subscribe) { |client_id, channel| watcher.subscribed(client_id, channel) }
bayeux.bind(:unsubscribe) { |client_id, channel| watcher.unsubscribed(client_id, channel) }
bayeux.bind(:disconnect) { |client_id| watcher.gone(client_id) }
peer.bayeux = bayeux
peer.bayeux_server = bayeux.instance_variable_get(:@server)
peer.watcher = watcher
app = RawConnectReplies.new(bayeux, peer)

Thin::Logging.silent = true
$stdout.sync = true

EM.run do
  server = Thin::Server.new('127.0.0.1', options[:port], app, signals: false)
  server.timeout = 60 # idle keep-alive connections; long polls last options[:timeout] seconds
  server.start
  puts "port #{server.backend.port}"
  %w[INT TERM].each { |signal| trap(signal) { exit!(0) } }
  EM.add_timer(options[:lifetime]) { exit!(0) }
  if options[:exit_on_stdin_eof]
    Thread.new do
      $stdin.read
      exit!(0)
    end
  end
end
