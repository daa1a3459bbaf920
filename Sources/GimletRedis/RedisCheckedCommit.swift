import Gimlet

/// A commit with compare-and-set, as one Lua script (`EVAL`): Redis runs a
/// script atomically, so checking the keys the request read and applying
/// its writes are one step that no other client can interleave with.
///
/// `MULTI`/`EXEC` cannot do this (its commands cannot look at each other's
/// results), and `WATCH` would need a round trip before the transaction and
/// would fail on any change to the whole hash, not only to the keys read.
///
/// The script is sent in full with each checked commit rather than by its
/// SHA (`EVALSHA`): Redis caches it by its digest anyway, and after a Redis
/// restart or failover an `EVALSHA` would fail with `NOSCRIPT` and cost a
/// second round trip. Only read-modify-write commits pay the script's 1 KiB.
///
/// Replay: the script also sets a marker key unique to this commit, which
/// lives a minute. If the connection failed before the reply and the commit
/// is sent again (see `RedisSessionBackend.exchange`), the script finds its
/// marker and answers "applied" without checking again, where the check
/// would otherwise fail against the commit's own writes.
///
/// Arguments: `KEYS` are the channel hashes in the order of the changes,
/// then the marker. Per change, `ARGV` holds: remove-all (`1`/`0`); the
/// number of expectations, then for each the field, `1` with the expected
/// JSON or `0` with an empty string for "absent"; the number of removals,
/// then the fields; the number of upserts, then field and JSON pairs; the
/// seconds to expire in, or an empty string to leave the expiry alone.
/// The reply is `1` when applied, or the first changed field's name.
enum RedisCheckedCommit {
    static let script = """
        local marker = KEYS[#KEYS]
        if redis.call('EXISTS', marker) == 1 then return 1 end
        local a = 1
        for i = 1, #KEYS - 1 do
          local key = KEYS[i]
          local expectations = tonumber(ARGV[a + 1])
          a = a + 2
          for _ = 1, expectations do
            local current = redis.call('HGET', key, ARGV[a])
            if ARGV[a + 1] == '1' then
              if current ~= ARGV[a + 2] then return ARGV[a] end
            elseif current then
              return ARGV[a]
            end
            a = a + 3
          end
          a = a + 1 + tonumber(ARGV[a])
          a = a + 1 + 2 * tonumber(ARGV[a])
          a = a + 1
        end
        a = 1
        for i = 1, #KEYS - 1 do
          local key = KEYS[i]
          if ARGV[a] == '1' then redis.call('DEL', key) end
          a = a + 2 + 3 * tonumber(ARGV[a + 1])
          local removals = tonumber(ARGV[a])
          if removals > 0 then redis.call('HDEL', key, unpack(ARGV, a + 1, a + removals)) end
          a = a + 1 + removals
          local upserts = tonumber(ARGV[a])
          if upserts > 0 then redis.call('HSET', key, unpack(ARGV, a + 1, a + 2 * upserts)) end
          a = a + 1 + 2 * upserts
          if ARGV[a] ~= '' then redis.call('EXPIRE', key, ARGV[a]) end
          a = a + 1
        end
        redis.call('SET', marker, '1', 'PX', 60000)
        return 1
        """

    /// Appends the `EVAL` of `changes` to `pipeline`; `key` names a channel's
    /// hash, `marker` is the key this commit marks itself applied under.
    static func append(_ changes: [SessionChange], marker: [UInt8], key: (SessionID) -> [UInt8],
                       to pipeline: inout RedisPipeline) {
        var arguments = 0
        for change in changes {
            arguments += 5 + 3 * change.expected.count + change.removals.count + 2 * change.upserts.count
        }
        pipeline.begin("EVAL", arguments: 2 + changes.count + 1 + arguments)
        pipeline.argument(script)
        pipeline.argument(String(changes.count + 1))
        for change in changes { pipeline.argument(key(change.id)) }
        pipeline.argument(marker)
        for change in changes {
            pipeline.argument(change.removeAll ? "1" : "0")
            pipeline.argument(String(change.expected.count))
            for (field, expected) in change.expected.sorted(by: { $0.key < $1.key }) {
                pipeline.argument(field)
                switch expected {
                case .absent:
                    pipeline.argument("0")
                    pipeline.argument("")
                case .value(let value):
                    pipeline.argument("1")
                    pipeline.argument(value.json)
                }
            }
            pipeline.argument(String(change.removals.count))
            for field in change.removals.sorted() { pipeline.argument(field) }
            pipeline.argument(String(change.upserts.count))
            for (field, value) in change.upserts.sorted(by: { $0.key < $1.key }) {
                pipeline.argument(field)
                pipeline.argument(value.json)
            }
            let expires = !change.upserts.isEmpty || change.isRenewalOnly
            pipeline.argument(expires ? String(change.timeToLive) : "")
        }
    }
}
