import CaseBridgeNet
import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore
import CaseBridgeTLS
import CaseBridgeWebConsole
import Foundation
import Logging
import Synchronization

/// One agency's node: the exchange server for peers, the console for staff, the store, and a
/// delivery worker for each peer it sends to.
public final class Node: Sendable {
    public let configuration: NodeConfiguration
    public let tracker: CaseTracker
    let exchange: RPCServer
    let console: RPCServer
    /// The same console as Connect JSON over HTTPS, when configured.
    let consoleHTTPS: ConnectGateway?
    let crew: DeliveryCrew
    private let retentionTask: Task<Void, Never>
    /// NCCT only: compares each arriving case's persons with the open cases' (see Duplicates.swift).
    private let duplicatesTask: Task<Void, Never>?
    /// Raises an event when a case's deadline clock reaches half, three quarters or all of its time.
    private let deadlineTask: Task<Void, Never>
    private let health: HealthService
    private let refusals: RefusalLedger
    private let clientGroup: EventLoopGroup
    /// Threads for the delivery workers, which read the outbox and decode what they send: blocking
    /// work that must not hold Swift's cooperative threads. One lane per peer.
    private let deliveryPool = WorkerPool(threads: 2, name: "cb-delivery")
    /// Retention, deadlines and duplicate detection: nobody waits for them, so they yield the CPU to
    /// calls (a 5,000-person case takes seconds to compare with everyone else's).
    private let backgroundPool = WorkerPool(threads: 1, name: "cb-background", niceness: 10)
    let logger: Logger
    private let expiry: ExpiryWatch
    /// The trust files as the last reload read them (the watcher compares).
    let trustFiles: TrustFiles
    let checkpoints: AuditCheckpoints
    /// Signs receipts and audit checkpoints with the node's certificate and key (renewed on reload).
    private let signer: ReceiptSigner
    /// One reload at a time, whether from SIGHUP, the file watcher or a fetched directory.
    private let reloading = Mutex<Void>(())
    /// The file watcher and the directory follower: started last, stopped first.
    private let background = Mutex<[Task<Void, Never>]>([])

    /// The port the exchange listens on (useful when the configuration asked for port 0).
    public var port: Int { exchange.port }

    public static let version = "0.1.0"

    public init(configuration: NodeConfiguration, logger: Logger) async throws {
        self.configuration = configuration
        self.logger = logger
        trustFiles = TrustFiles(configuration)
        let directory = try Directory.load(configuration.directoryPath, caPath: configuration.ca)
        guard let me = directory.node(configuration.nodeID) else {
            throw ConfigurationError(
                file: configuration.directoryPath,
                field: "nodes",
                problem: "no entry for this node's node_id \"\(configuration.nodeID)\""
            )
        }
        let (serverTLS, clientTLS) = try Self.trustMaterial(configuration, directory: directory, me: me)
        let identity = PeerIdentity(trustDomain: directory.trustDomain, nodeID: me.id)
        // Sockets, the database and its WAL, and the console's connections all take file descriptors.
        let filesNeeded = configuration.maxConnections + 256
        let filesAllowed = FileLimit.raise(toAtLeast: filesNeeded)
        if filesAllowed < filesNeeded {
            logger.warning(
                "the process may open fewer files than limits.max_connections needs; raise ulimit -n",
                metadata: ["open-files-allowed": "\(filesAllowed)", "needed": "\(filesNeeded)"]
            )
        }
        let expiry = ExpiryWatch(configuration: configuration)
        self.expiry = expiry
        for warning in expiry.warnings() { logger.warning("\(warning)") }
        try DataKeyFile.settle(configuration, logger: logger)
        let store = try CaseStore(
            folder: configuration.dataFolder,
            dataKey: try DataKeyFile.loadOrCreate(configuration.dataKeyFile),
            logger: logger,
            memory: configuration.storeMemory
        )
        guard try store.read({ try $0.dataKeysOpen() }) else {
            store.close()
            throw ConfigurationError(
                file: configuration.dataKeyFile,
                field: "",
                problem: "this data key does not open the node's database (a key from before a rotation, "
                    + "or another node's?)"
            )
        }
        let peers = Self.peers(of: me, in: directory)
        let clientGroup = EventLoopGroup(threads: 1, name: "cb-dlv-loop")
        self.clientGroup = clientGroup
        let crewBox = CrewBox()
        let tracker = try CaseTracker(
            me: me,
            directory: directory,
            store: store,
            logger: logger,
            matchIndexLimits: configuration.matchIndex,
            maxComparedCases: configuration.duplicateComparedCases
        ) { peer in crewBox.crew?.nudge(peer) }
        self.tracker = tracker
        try await tracker.buildSearchIndexIfNeeded()
        let crew = DeliveryCrew(pool: deliveryPool) { [configuration, logger] peer, clientTLS in
            var client = RPCClientConfiguration()
            client.maxReceiveMessageBytes = configuration.maxReadBytes
            client.maxSendMessageBytes = configuration.maxMessageBytes
            client.protoLimits = configuration.readLimits
            client.timeouts.handshake = configuration.handshakeTimeout
            client.initialBackoff = min(configuration.delivery.initialBackoff, .seconds(1))
            client.maxBackoff = min(configuration.delivery.maxBackoff, .seconds(120))
            let channel = RPCChannel(
                endpoint: peer.endpoint,
                target: PeerIdentity(trustDomain: tracker.directory.trustDomain, nodeID: peer.id),
                tls: clientTLS,
                configuration: client,
                logger: logger,
                group: clientGroup
            )
            return DeliveryWorker(
                peer: peer,
                channel: channel,
                tracker: tracker,
                settings: configuration.delivery,
                readLimits: configuration.readLimits,
                logger: logger
            )
        }
        crew.add(peers, tls: clientTLS, start: false)
        self.crew = crew
        crewBox.crew = crew

        var server = RPCServerConfiguration()
        server.address = configuration.listen
        server.maxConnections = configuration.maxConnections
        server.maxReceiveMessageBytes = configuration.maxMessageBytes
        server.maxSendMessageBytes = configuration.maxReadBytes
        server.http2.maxConcurrentStreams = configuration.maxConcurrentStreams
        server.timeouts.handshake = configuration.handshakeTimeout
        server.idleTimeout = configuration.idleTimeout
        server.http2.maxHeaderListSize = configuration.maxHeaderListBytes
        server.http2.resetBurst = configuration.resetBurst
        server.http2.resetsPerSecond = configuration.resetsPerSecond
        server.keepaliveInterval = configuration.keepaliveInterval
        server.keepaliveTimeout = configuration.keepaliveTimeout
        server.shutdownGracePeriod = configuration.shutdownGrace
        server.protoLimits = ProtoLimits(
            maxMessageBytes: configuration.maxMessageBytes,
            maxElements: configuration.maxDecodedElements
        )
        server.maxHandshakesPerAddress = configuration.maxHandshakesPerAddress
        server.connectionsPerAddressPerSecond = configuration.connectionsPerAddressPerSecond
        server.maxConnectionBufferBytes = configuration.maxConnectionBufferBytes
        server.stallTimeout = configuration.stallTimeout
        server.timeouts.lingerTotal = configuration.lingerTotal
        server.timeouts.socketSendBufferBytes = configuration.socketSendBufferBytes
        server.http2.maxQueuedControlReplies = configuration.maxQueuedControlFrames
        server.http2.minPingInterval = configuration.minPingInterval
        server.http2.maxPingStrikes = configuration.maxPingStrikes
        server.workerThreads = configuration.workerThreads
        server.peerLimits = configuration.peerLimits

        signer = try ReceiptSigner(
            node: me.id,
            certificatePath: configuration.certificate,
            keyPath: configuration.privateKey
        )
        let checkpoints = AuditCheckpoints(
            tracker: tracker,
            signer: signer,
            crew: crew,
            caPath: configuration.ca,
            crlPath: configuration.crl
        )
        self.checkpoints = checkpoints
        var exchangeRouter = RPCRouter()
        ExchangeService.register(in: &exchangeRouter, tracker: tracker, signer: signer, checkpoints: checkpoints)
        let health = HealthService(services: exchangeRouter.services)
        self.health = health
        health.register(in: &exchangeRouter)
        ReflectionService.register(in: &exchangeRouter)
        let refusals = RefusalLedger(logger: logger) { event, source, detail in
            await tracker.audit(event: event, actor: source, subject: "connection", outcome: "refused", detail: detail)
        }
        self.refusals = refusals
        exchange = try RPCServer(
            configuration: server,
            tls: serverTLS,
            router: exchangeRouter,
            logger: logger,
            onRefusal: refusals.record
        )

        var consoleConfiguration = server
        consoleConfiguration.address = "unix:\(configuration.consoleSocket)"
        consoleConfiguration.localPeer = identity
        // Every caller on the socket shares one identity (the node's own user): per-peer limits
        // would only make staff wait for each other.
        consoleConfiguration.peerLimits = .unlimited
        var consoleRouter = RPCRouter()
        let consoleService = ConsoleService(
            tracker: tracker,
            accounts: StaffAccounts(tracker: tracker, settings: configuration.staff),
            status: StatusReporter(
                tracker: tracker,
                crew: crew,
                startedAtMs: Clock.nowMs(),
                expiry: expiry,
                checkpoints: checkpoints
            ),
            checkpoints: checkpoints,
            retention: configuration.retention,
            statisticsMinCount: configuration.statisticsMinCount,
            caPath: configuration.ca,
            crlPath: configuration.crl,
            via: "socket"
        )
        consoleService.register(in: &consoleRouter)
        var httpsRouter = RPCRouter()
        ConsoleService(
            tracker: tracker,
            accounts: consoleService.accounts,
            status: consoleService.status,
            checkpoints: checkpoints,
            retention: configuration.retention,
            statisticsMinCount: configuration.statisticsMinCount,
            caPath: configuration.ca,
            crlPath: configuration.crl,
            via: "https"
        ).register(in: &httpsRouter)
        HealthService(services: consoleRouter.services).register(in: &consoleRouter)
        do {
            console = try RPCServer(
                configuration: consoleConfiguration,
                tls: nil,
                router: consoleRouter,
                logger: logger,
                onRefusal: refusals.record
            )
        } catch {
            await exchange.shutdown()
            throw error
        }
        if let https = configuration.consoleHTTPS {
            do {
                var gateway = ConnectGatewayConfiguration()
                gateway.address = https.listen
                gateway.maxConnections = https.maxConnections
                gateway.maxConcurrentStreams = https.maxConcurrentStreams
                gateway.idleTimeout = https.idleTimeout
                gateway.maxHeadBytes = Int(configuration.maxHeaderListBytes)
                gateway.maxRequestBytes = configuration.maxMessageBytes
                // Requests are bounded as the exchange bounds them; answers may be as large as reads are.
                gateway.protoLimits = ProtoLimits(
                    maxMessageBytes: configuration.maxMessageBytes,
                    maxElements: configuration.maxDecodedElements
                )
                gateway.maxResponseBytes = configuration.maxReadBytes
                gateway.files = WebConsole.files
                gateway.timeouts.handshake = configuration.handshakeTimeout
                consoleHTTPS = try ConnectGateway(
                    configuration: gateway,
                    tls: try TLSContext(
                        .consoleServer,
                        configuration: TLSConfiguration(
                            certificateChainPath: https.certificate,
                            privateKeyPath: https.privateKey,
                            trustedCAPath: "",
                            trustDomain: ""
                        )
                    ),
                    router: httpsRouter,
                    localPeer: identity,
                    logger: logger,
                    onRefusal: refusals.record
                )
            } catch {
                await exchange.shutdown()
                await console.shutdown()
                throw error
            }
        } else {
            consoleHTTPS = nil
        }
        let retention = configuration.retention, retentionLogger = logger
        crew.startAll()
        retentionTask = Task(executorPreference: backgroundPool.lane("retention")) {
            // At start (a restored old backup comes back under the rule), then every interval.
            while !Task.isCancelled {
                do { try await tracker.purgeDue(retention) } catch {
                    retentionLogger.error("retention could not run", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: retention.checkInterval)
            }
        }
        let deadlineInterval = configuration.deadlineCheckInterval, deadlineLogger = logger
        deadlineTask = Task(executorPreference: backgroundPool.lane("deadlines")) {
            while !Task.isCancelled {
                do { try await tracker.raiseDeadlineEvents() } catch {
                    deadlineLogger.error("deadline events could not be raised", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: deadlineInterval)
            }
        }
        let duplicatesLogger = logger
        duplicatesTask =
            me.role != .ncct
            ? nil
            : Task(executorPreference: backgroundPool.lane("duplicates")) {
                var changes = tracker.changes.subscribe().makeAsyncIterator()
                repeat {
                    do {
                        try await tracker.scanForDuplicates()
                        MemoryReturn.soon()  // a large case's comparisons allocate much, briefly
                    } catch is CancellationError {
                        break  // the node is stopping: nothing went wrong
                    } catch {
                        duplicatesLogger.error("duplicate detection could not run", metadata: ["error": "\(error)"])
                        try? await Task.sleep(for: .seconds(5))
                    }
                } while await changes.next() != nil && !Task.isCancelled
            }
        let watchInterval = configuration.watchFilesInterval, pollInterval = configuration.directoryPollInterval
        let requestsLogger = logger
        background.withLock { tasks in
            if let known = tracker.knownRequests {
                tasks.append(
                    Task(executorPreference: backgroundPool.lane("known-requests")) {
                        do {
                            guard let count = try known.load(from: tracker.store) else { return }
                            requestsLogger.info("request ids loaded", metadata: ["count": "\(count)"])
                        } catch {
                            // Every request's id is then looked for in the store, as without the filter.
                            requestsLogger.error("request ids could not be loaded", metadata: ["error": "\(error)"])
                        }
                    }
                )
            }
            if let watchInterval {
                tasks.append(Task { [weak self] in await self?.watchTrustFiles(every: watchInterval) })
            }
            if let pollInterval, me.role == .embassy {
                tasks.append(Task { [weak self] in await self?.followDirectory(every: pollInterval) })
            }
            if let checkpointInterval = configuration.auditCheckpointInterval {
                tasks.append(Task { await checkpoints.run(every: checkpointInterval) })
            }
        }
        logger.info(
            "node started",
            metadata: [
                "node": "\(me.id)", "role": "\(me.role.rawValue)", "port": "\(exchange.port)",
                "console": "\(configuration.consoleSocket)", "peers": "\(peers.map(\.id).joined(separator: ","))",
            ]
        )
    }

    /// A private key others can read is no longer private: refuse it, saying how to fix it.
    static func checkOwnerOnly(_ keyPath: String, what: String = "the private key") throws(ConfigurationError) {
        let attributes = try? FileManager.default.attributesOfItem(atPath: keyPath)
        guard let mode = (attributes?[.posixPermissions] as? NSNumber)?.intValue, mode & 0o077 != 0 else { return }
        throw ConfigurationError(
            file: keyPath,
            field: "",
            problem: "\(what) is readable by other users; run: chmod 600 \(keyPath)"
        )
    }

    /// The node's TLS contexts from its certificate, key, CA and CRL files, checked: the
    /// certificate must name this node and be valid now, the key must be owner-only.
    static func trustMaterial(
        _ configuration: NodeConfiguration,
        directory: Directory,
        me: DirectoryEntry
    ) throws -> (server: TLSContext, client: TLSContext) {
        try Self.checkOwnerOnly(configuration.privateKey)
        let tlsConfiguration = TLSConfiguration(
            certificateChainPath: configuration.certificate,
            privateKeyPath: configuration.privateKey,
            trustedCAPath: configuration.ca,
            revocationListPath: configuration.crl,
            trustDomain: directory.trustDomain
        )
        let serverTLS = try TLSContext(.server, configuration: tlsConfiguration)
        let clientTLS = try TLSContext(.client, configuration: tlsConfiguration)
        let identity = PeerIdentity(trustDomain: directory.trustDomain, nodeID: me.id)
        guard serverTLS.identities.contains(identity) else {
            throw ConfigurationError(
                file: configuration.certificate,
                field: "",
                problem:
                    "certificate is not for \(identity) "
                    + "(it names \(serverTLS.identities.map(\.description).joined(separator: ", ")))"
            )
        }

        let now = Clock.nowMs() / 1000
        if let notAfter = serverTLS.certificateNotAfter, notAfter < now {
            throw ConfigurationError(
                file: configuration.certificate,
                field: "",
                problem: "certificate expired; ask the federation CA for a new one"
            )
        }
        if let notBefore = serverTLS.certificateNotBefore, notBefore > now {
            throw ConfigurationError(
                file: configuration.certificate,
                field: "",
                problem: "certificate is not valid yet; check the clock"
            )
        }
        return (serverTLS, clientTLS)
    }

    /// The nodes `me` exchanges with: NCCT with every embassy, an embassy with NCCT only.
    static func peers(of me: DirectoryEntry, in directory: Directory) -> [DirectoryEntry] {
        directory.nodes.filter { $0.id != me.id && ($0.role == .ncct || me.role == .ncct) }
    }

    /// Reads the directory, certificate, key, CA and CRL files again (SIGHUP, `casebridge node
    /// reload`, or the file watcher). New connections and deliveries use them at once: a node added
    /// to the directory may call and be delivered to; every open connection of a peer the CRL now
    /// revokes, or that left the directory, is cut (what this node owes it stays in the outbox). On
    /// any problem nothing changes and the reason is thrown. Returns how many certificates the CRL
    /// revokes.
    @discardableResult
    public func reload(by actor: String = "operator") async throws -> Int {
        let (revoked, added, removed) = try reloading.withLock { _ in
            trustFiles.markRead()
            let directory = try Directory.load(configuration.directoryPath, caPath: configuration.ca)
            let me = try checkReplaceable(directory, file: configuration.directoryPath)
            let (serverTLS, clientTLS) = try Self.trustMaterial(configuration, directory: directory, me: me)
            try signer.reload(certificatePath: configuration.certificate, keyPath: configuration.privateKey)
            let revoked =
                try configuration.crl.map { try RevocationList.serials(String(contentsOfFile: $0, encoding: .utf8)) }
                ?? []
            tracker.replaceDirectory(directory)
            exchange.replaceTLS(serverTLS) { peer, serial in
                if let serial, revoked.contains(serial) { return "the certificate of \(peer.nodeID) is revoked" }
                return directory.node(peer.nodeID) == nil ? "\(peer.nodeID) is not in the directory" : nil
            }
            let peers = Self.peers(of: me, in: directory)
            let before = crew.peers
            let added = peers.filter { !before.contains($0.id) }
            crew.replaceTLS(clientTLS)
            crew.add(added, tls: clientTLS, start: true)
            return (revoked, added, before.subtracting(peers.map(\.id)))
        }
        await crew.remove(removed)
        expiry.refresh(configuration)
        let warnings = expiry.warnings()
        for warning in warnings { logger.warning("\(warning)") }
        await tracker.audit(
            event: "node.reloaded",
            actor: actor,
            subject: tracker.me.id,
            outcome: "ok",
            detail: "revoked=\(revoked.count) warnings=\(warnings.count) "
                + "directory_version=\(tracker.directory.version) "
                + "peers_added=\(added.map(\.id).joined(separator: ",")) "
                + "peers_removed=\(removed.sorted().joined(separator: ","))"
        )
        logger.notice(
            "directory and trust material reloaded",
            metadata: [
                "revoked": "\(revoked.count)", "added": "\(added.map(\.id))", "removed": "\(removed.sorted())",
                "directory-version": "\(tracker.directory.version)", "by": "\(actor)",
            ]
        )
        return revoked.count
    }

    /// This node's entry in a new directory: it must be there, in the same role and trust domain.
    func checkReplaceable(_ directory: Directory, file: String) throws(ConfigurationError) -> DirectoryEntry {
        guard let me = directory.node(tracker.me.id), me.role == tracker.me.role,
            directory.trustDomain == tracker.directory.trustDomain
        else {
            throw ConfigurationError(
                file: file,
                field: "nodes",
                problem: "this node's entry (or the trust domain) changed or is gone; that takes a restart"
            )
        }
        return me
    }

    /// Graceful stop: health goes NOT_SERVING, servers let calls in flight finish, deliveries stop
    /// (their outbox stays for the next start), the store closes after its last write.
    public func shutdown() async {
        logger.info("node stopping", metadata: ["node": "\(tracker.me.id)"])
        let background = self.background.withLock { tasks in
            defer { tasks.removeAll() }
            return tasks
        }
        for task in background { task.cancel() }
        for task in background { await task.value }
        health.shutdown()
        await exchange.shutdown()
        await console.shutdown()
        consoleHTTPS?.shutdown()
        retentionTask.cancel()
        duplicatesTask?.cancel()
        deadlineTask.cancel()
        await crew.stopAll()
        await retentionTask.value
        await duplicatesTask?.value
        await deadlineTask.value
        clientGroup.shutdown()
        deliveryPool.shutdown()
        backgroundPool.shutdown()
        await refusals.stop()
        tracker.store.close()
        logger.info("node stopped", metadata: ["node": "\(tracker.me.id)"])
    }
}

/// Lets the tracker wake the worker of a peer, once the crew exists.
private final class CrewBox: @unchecked Sendable {
    var crew: DeliveryCrew?
}

/// What `casebridge status` shows: peers, backlog, certificate expiry.
struct StatusReporter: Sendable {
    let tracker: CaseTracker
    let crew: DeliveryCrew
    let startedAtMs: Int64
    let expiry: ExpiryWatch
    let checkpoints: AuditCheckpoints

    func status(for member: StaffMember) throws -> NodeStatus {
        let backlog = try tracker.store.read { try $0.backlog(pendingStates: CaseTracker.pendingDeliveryStates) }
        var status = NodeStatus()
        status.nodeID = tracker.me.id
        status.role = tracker.me.role == .ncct ? .ncct : .embassy
        status.represents = tracker.me.represents
        status.certificateNotAfterMs = (expiry.certificateNotAfter ?? 0) * 1000
        status.startedAtMs = startedAtMs
        status.version = Node.version
        status.unreadInbox = UInt32(try tracker.store.read { try $0.unreadCount(staffID: member.staffID) })
        status.revocationChecked = expiry.crl != nil
        status.crlNextUpdateMs = (expiry.crlNextUpdate ?? 0) * 1000
        status.warnings = expiry.warnings() + checkpoints.warnings
        let deadlines = try tracker.deadlineCounts()
        status.directoryVersion = tracker.directory.version
        status.directorySigned = tracker.directory.signedFile != nil
        status.overdueCases = UInt32(deadlines.overdue)
        status.dueSoonCases = UInt32(deadlines.dueSoon)
        // The peers this node exchanges with: for an embassy, NCCT only (never other embassies).
        status.peers = tracker.directory.nodes.filter { crew.worker($0.id) != nil }.map { entry in
            var peer = PeerStatus()
            peer.nodeID = entry.id
            peer.displayName = entry.displayName
            peer.endpoint = entry.endpoint
            if let link = crew.worker(entry.id)?.status {
                peer.reachable = link.reachable
                peer.failingSinceMs = link.failingSinceMs
                peer.lastContactAtMs = link.lastContactAtMs
                peer.lastError = link.lastError
            }
            if let owed = backlog[entry.id] {
                peer.outboxDepth = UInt32(owed.depth)
                peer.oldestUndeliveredAtMs = owed.oldestQueuedAtMs
                if peer.lastError.isEmpty { peer.lastError = owed.lastError }
            }
            return peer
        }
        return status
    }
}
