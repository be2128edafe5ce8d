#!/usr/bin/env ruby
# A raw Bayeux client over the websocket connection type (faye-websocket's client, Bayeux JSON
# written by hand), to prove the peer serves that transport, which curl cannot speak.
#
#   ruby bayeux_ws_probe.rb ws://127.0.0.1:PORT/api/v2/notifications /v2/me/calls [EVENTS] [SECONDS]
#
# Prints one line per step on stdout: "handshake <clientId>", "subscribed <channel>", then
# "event <json>" for each message on the channel; exits 0 after EVENTS events (default 1), 1 on
# any failure or after SECONDS (default 20).

require 'json'
require 'eventmachine'
require 'faye/websocket'

url, channel, wanted, seconds = ARGV
abort 'usage: bayeux_ws_probe.rb URL CHANNEL [EVENTS] [SECONDS]' unless url && channel
wanted = (wanted || 1).to_i
seconds = (seconds || 20).to_f
$stdout.sync = true

EM.run do
  EM.add_timer(seconds) do
    puts "timeout after #{seconds} s"
    exit!(1)
  end
  socket = Faye::WebSocket::Client.new(url)
  client_id = nil
  events = 0
  send = ->(message) { socket.send(JSON.generate([message])) }
  connect = -> { send.call('channel' => '/meta/connect', 'clientId' => client_id, 'connectionType' => 'websocket') }

  socket.on(:open) do
    send.call('channel' => '/meta/handshake', 'version' => '1.0', 'supportedConnectionTypes' => ['websocket'],
              'id' => '1')
  end
  socket.on(:message) do |event|
    JSON.parse(event.data).each do |message|
      case message['channel']
      when '/meta/handshake'
        abort "handshake failed: #{message.to_json}" unless message['successful']
        client_id = message['clientId']
        puts "handshake #{client_id}"
        send.call('channel' => '/meta/subscribe', 'clientId' => client_id, 'subscription' => channel)
        connect.call
      when '/meta/subscribe'
        abort "subscribe failed: #{message.to_json}" unless message['successful']
        puts "subscribed #{message['subscription']}"
      when '/meta/connect'
        abort "connect failed: #{message.to_json}" unless message['successful']
        connect.call
      when channel
        puts "event #{JSON.generate(message)}"
        events += 1
        exit!(0) if events >= wanted
      end
    end
  end
  socket.on(:close) do |event|
    puts "closed #{event.code} #{event.reason}"
    exit!(1)
  end
end
