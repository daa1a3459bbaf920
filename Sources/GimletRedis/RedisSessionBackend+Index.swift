import Gimlet
import GimletHTTP

/// A user's sessions (`SessionRegistry`) in one round trip each: a Lua
/// script (`EVAL`) reads the index hash and the channels it lists, or
/// deletes them, atomically. The scripts name the channels' keys from the
/// index's fields, not in `KEYS`: fine for one Redis (or Sentinel), which
/// is what this backend supports, not for Redis Cluster.
extension RedisSessionBackend {
    /// `KEYS[1]`: the index hash; `ARGV[1]`: the key prefix, then the fields
    /// wanted. Replies id, HMGET of the fields, … for each channel still
    /// there, and drops the index's entries of the others.
    static let loadIndexedScript = """
        local out = {}
        for _, id in ipairs(redis.call('HKEYS', KEYS[1])) do
          local key = ARGV[1] .. id
          if redis.call('EXISTS', key) == 1 then
            out[#out + 1] = id
            out[#out + 1] = redis.call('HMGET', key, unpack(ARGV, 2))
          else
            redis.call('HDEL', KEYS[1], id)
          end
        end
        return out
        """

    /// `KEYS[1]`: the index hash; `ARGV[1]`: the key prefix, then the ids
    /// to keep. Deletes every other listed channel and its entry; replies
    /// id, entry value, … for each channel that was still there.
    static let deleteIndexedScript = """
        local keep = {}
        for i = 2, #ARGV do keep[ARGV[i]] = true end
        local out = {}
        local entries = redis.call('HGETALL', KEYS[1])
        for i = 1, #entries, 2 do
          local id = entries[i]
          if not keep[id] then
            redis.call('HDEL', KEYS[1], id)
            if redis.call('DEL', ARGV[1] .. id) == 1 then
              out[#out + 1] = id
              out[#out + 1] = entries[i + 1]
            end
          end
        end
        return out
        """

    public func loadIndexed(_ index: SessionID, keys: [String]) throws -> [SessionID: [String: SessionValue]] {
        let pipeline = script(Self.loadIndexedScript, index: index, arguments: keys)
        var found: [SessionID: [String: SessionValue]] = [:]
        for (id, reply) in try pairs(exchange(pipeline)) {
            guard case .array(let values) = reply, values.count == keys.count else { throw unexpected(reply) }
            var channel: [String: SessionValue] = [:]
            for (field, value) in zip(keys, values) {
                if case .string(let json) = value, let value = try? SessionValue(json: json) { channel[field] = value }
            }
            found[id] = channel
        }
        return found
    }

    public func deleteIndexed(_ index: SessionID, keeping: Set<SessionID>) throws -> [SessionID: SessionValue] {
        var pipeline = script(Self.deleteIndexedScript, index: index, arguments: keeping.map(\.hex))
        appendWait(to: &pipeline)
        let replies = try exchange(pipeline)
        var deleted: [SessionID: SessionValue] = [:]
        for (id, reply) in try pairs(replies) {
            guard case .string(let json) = reply else { throw unexpected(reply) }
            deleted[id] = (try? SessionValue(json: json)) ?? .null
        }
        try checkWait(replies)
        return deleted
    }

    /// The `EVAL` of `script` on the hash of `index`, with the key prefix and `arguments` as `ARGV`.
    private func script(_ script: String, index: SessionID, arguments: [String]) -> RedisPipeline {
        var pipeline = RedisPipeline()
        pipeline.begin("EVAL", arguments: 4 + arguments.count)
        pipeline.argument(script)
        pipeline.argument("1")
        pipeline.argument(key(index))
        pipeline.argument(configuration.prefix)
        for argument in arguments { pipeline.argument(argument) }
        return pipeline
    }

    /// The (channel id, reply) pairs of a script's flat reply; entries whose field is no id are skipped.
    private func pairs(_ replies: [RedisReply]) throws -> [(SessionID, RedisReply)] {
        guard case .array(let flat)? = replies.first, flat.count % 2 == 0 else { throw unexpected(replies.first ?? .null) }
        var pairs: [(SessionID, RedisReply)] = []
        var index = 0
        while index + 1 < flat.count {
            if case .string(let field) = flat[index], let hex = UTF8Text.string(field), let id = SessionID(hex: hex) {
                pairs.append((id, flat[index + 1]))
            }
            index += 2
        }
        return pairs
    }

    private func unexpected(_ reply: RedisReply) -> SessionBackendError {
        SessionBackendError(backend: name, message: "unexpected reply to a script on a user's sessions: \(reply)")
    }
}
