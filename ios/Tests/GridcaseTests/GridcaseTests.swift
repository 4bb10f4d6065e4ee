import CoreGraphics
import Foundation
import ImageIO
import UniformTypeIdentifiers
import XCTest

@testable import Gridcase

/// The Swift API against the real Rust core (macOS slice of GridcaseFFI.xcframework):
/// run ios/build-xcframework.sh, then `swift test` in ios/.
final class GridcaseTests: XCTestCase {
    private var dir: URL!
    private var client: GridcaseClient!

    private let street = Location(point: GeoPoint(lat: 42.888, lon: 125.143, accuracyM: 6), address: "Renmin Street 12")

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("gridcase-\(UUID().uuidString)")
        client = try GridcaseClient.open(
            dataDir: dir.appendingPathComponent("data"),
            config: ClientConfig(actorId: "leader-0042", maxPhotoEdge: 800, thumbEdge: 160)
        )
    }

    override func tearDownWithError() throws {
        client = nil
        try? FileManager.default.removeItem(at: dir)
    }

    private func manhole(location: Location? = nil) -> NewCase {
        NewCase(
            category: .collapsedManhole,
            title: "Manhole collapsed after the storm",
            description: "A car's front wheel fell in; cones needed now.",
            location: location ?? street,
            occurred: Date(timeIntervalSinceNow: -20 * 60),
            proposedDeadline: Date(timeIntervalSinceNow: 3 * 24 * 3600)
        )
    }

    func testRecordsACaseWithAPhotoAndListsIt() async throws {
        let draft = try client.createCase(draft: manhole())
        XCTAssertEqual(draft.status, .draft)
        XCTAssertEqual(draft.location, street)

        let file = dir.appendingPathComponent("IMG_0001.jpg")
        try jpeg(width: 1600, height: 1200).write(to: file)
        let photo = try await client.addPhoto(caseId: draft.id, file: file)
        XCTAssertEqual(photo.width, 800)
        XCTAssertEqual(photo.height, 600)
        XCTAssertEqual(photo.sha256.count, 64)

        _ = try client.submitCase(caseId: draft.id)
        let listed = try await client.allCases(query: CaseQuery(statuses: [.submitted]))
        XCTAssertEqual(listed.map(\.id), [draft.id])
        XCTAssertEqual(listed.first?.photoCount, 1)

        let detail = try await client.getCase(caseId: draft.id)
        XCTAssertEqual(detail.photos.map(\.id), [photo.id])
        XCTAssertFalse(detail.timeline.isEmpty)
    }

    func testErrorsCarryTheirFields() throws {
        let badLat = Location(point: GeoPoint(lat: 91.5, lon: 125.1, accuracyM: 5))
        XCTAssertThrowsError(try client.createCase(draft: manhole(location: badLat))) { error in
            guard case let GridcaseError.InvalidInput(field, reason) = error else {
                return XCTFail("expected InvalidInput, got \(error)")
            }
            XCTAssertEqual(field, "location.lat")
            XCTAssertFalse(reason.isEmpty)
        }
    }

    func testSyncNeedsAnEnrolment() async throws {
        do {
            _ = try await client.syncNow { _, _, _ in }
            XCTFail("sync without an enrolment succeeded")
        } catch GridcaseError.NotEnrolled {
            // expected
        }
    }

    func testCaseChangesStreamYieldsWhenACaseChanges() async throws {
        let draft = try client.createCase(draft: manhole())
        let changes = client.caseChanges()
        let seen = Task { () -> [String]? in
            for await ids in changes where ids.contains(draft.id) {
                return ids
            }
            return nil
        }
        // Give up (ending the loop with nil) rather than hang if nothing comes.
        let timeout = Task {
            try await Task.sleep(nanoseconds: 10_000_000_000)
            seen.cancel()
        }
        _ = try client.cancelCase(caseId: draft.id, reason: "duplicate report")
        let ids = await seen.value
        timeout.cancel()
        XCTAssertEqual(ids?.contains(draft.id), true)
    }

    /// A camera-like JPEG: a gradient sky, a road and a dark hole.
    private func jpeg(width: Int, height: Int) throws -> Data {
        let ctx = try XCTUnwrap(CGContext(
            data: nil, width: width, height: height, bitsPerComponent: 8, bytesPerRow: 0,
            space: CGColorSpaceCreateDeviceRGB(), bitmapInfo: CGImageAlphaInfo.noneSkipLast.rawValue
        ))
        for y in 0..<height {
            let t = CGFloat(y) / CGFloat(height)
            ctx.setFillColor(red: 0.35 + 0.4 * t, green: 0.55 + 0.2 * t, blue: 0.85 - 0.3 * t, alpha: 1)
            ctx.fill(CGRect(x: 0, y: y, width: width, height: 1))
        }
        ctx.setFillColor(gray: 0.5, alpha: 1)
        ctx.fill(CGRect(x: 0, y: 0, width: width, height: height / 3))
        ctx.setFillColor(gray: 0, alpha: 1)
        ctx.fillEllipse(in: CGRect(x: width / 3, y: height / 10, width: width / 4, height: height / 10))
        let image = try XCTUnwrap(ctx.makeImage())
        let data = NSMutableData()
        let dest = try XCTUnwrap(CGImageDestinationCreateWithData(data as CFMutableData, UTType.jpeg.identifier as CFString, 1, nil))
        CGImageDestinationAddImage(dest, image, [kCGImageDestinationLossyCompressionQuality: 0.85] as CFDictionary)
        XCTAssertTrue(CGImageDestinationFinalize(dest))
        return data as Data
    }
}
