<?php
/**
 * Admin page, its capability, the Users column, and uninstall.
 *
 * @package KycBridge
 */

namespace KycBridge\Tests;

use KycBridge\Admin_Page;
use KycBridge\Lifecycle;
use KycBridge\Settings;

/**
 * KYC Verifications page.
 */
class AdminTest extends TestCase {

	public function test_capability_is_granted_to_administrators_only() {
		foreach ( array( Lifecycle::CAPABILITY, Lifecycle::MANAGE_CAPABILITY ) as $cap ) {
			$this->assertTrue( get_role( 'administrator' )->has_cap( $cap ) );
			$this->assertFalse( get_role( 'editor' )->has_cap( $cap ) );
			$this->assertFalse( get_role( 'subscriber' )->has_cap( $cap ) );
		}
	}

	public function test_an_update_without_reactivation_grants_the_new_capability() {
		get_role( 'administrator' )->remove_cap( Lifecycle::MANAGE_CAPABILITY );
		update_option( Lifecycle::VERSION_OPTION, '0.0.1' );
		Lifecycle::maybe_upgrade();
		$this->assertTrue( get_role( 'administrator' )->has_cap( Lifecycle::MANAGE_CAPABILITY ) );
		$this->assertSame( \KycBridge\VERSION, get_option( Lifecycle::VERSION_OPTION ) );
	}

	public function test_page_refuses_users_without_the_capability() {
		$this->log_in( 'admin-page-editor@example.test', 'editor' );
		$this->expectException( WP_Die_Exception::class );
		$this->output( array( Admin_Page::class, 'render' ) );
	}

	public function test_overview_shows_chart_funnel_and_the_review_summary() {
		wp_set_current_user( 1 );
		$html = $this->output( array( Admin_Page::class, 'render' ) );
		$this->assertStringContainsString( '<svg class="kycb-chart"', $html );
		$this->assertMatchesRegularExpression( '/data-status="approved" data-count="[1-9]\d*"/', $html );
		$this->assertStringContainsString( 'data-step="consented"', $html );
		// Seeded by webhook only: outside the funnel, which counts consented people.
		$this->assertMatchesRegularExpression( '/Not in the funnel: \d+ people known only from a Persona webhook/', $html );
		// The targets per level come from the bridge's [review] target_hours (the test bridge sets enhanced = 36).
		$this->assertMatchesRegularExpression( '/\d+ waiting for a review, \d+ of them longer than their target \(Basic: 24 h, Enhanced: 36 h\)/', $html );
		$this->assertStringContainsString( 'nav-tab nav-tab-active" aria-current="page">Overview', $html );
		$this->assertStringNotContainsString( 'class="kycb-row', $html );  // the lists have their own tabs
	}

	public function test_queue_tab_lists_cases_in_review_with_name_and_email() {
		wp_set_current_user( 1 );
		$_GET['tab'] = 'queue';
		$html        = $this->output( array( Admin_Page::class, 'render' ) );
		$review      = self::fixtures()['people']['review'];
		$this->assertMatchesRegularExpression( '/<tr class="kycb-row[^"]*" data-inquiry-id="' . $review['inquiry_id'] . '" data-status="needs_review">/', $html );
		$this->assertDoesNotMatchRegularExpression( '/class="kycb-row[^"]*" data-inquiry-id="[^"]+" data-status="(?!needs_review)/', $html );
		$this->assertStringContainsString( '>Review<', $html );  // the person's first name
		$this->assertStringContainsString( $review['email'], $html );
		$this->assertStringContainsString( ' h of 36 h', $html );  // an investor: the enhanced target of the bridge
	}

	public function test_inquiries_tab_links_to_persona_and_the_person() {
		wp_set_current_user( 1 );
		$_GET['tab'] = 'inquiries';
		$html        = $this->output( array( Admin_Page::class, 'render' ) );
		foreach ( array( 'approved_investor', 'review', 'declined' ) as $key ) {
			$person = self::fixtures()['people'][ $key ];
			$this->assertStringContainsString( 'data-inquiry-id="' . $person['inquiry_id'] . '"', $html );
			$this->assertStringContainsString( 'https://app.withpersona.com/dashboard/inquiries/' . $person['inquiry_id'], $html );
			$this->assertStringContainsString( esc_url( Admin_Page::person_url( $person['email'] ) ), $html );
		}
	}

	public function test_table_filters_by_status_and_searches_by_email() {
		wp_set_current_user( 1 );
		$_GET = array(
			'tab'    => 'inquiries',
			'status' => 'declined',
		);
		$html = $this->output( array( Admin_Page::class, 'render' ) );
		$this->assertStringContainsString( 'data-inquiry-id="' . self::fixtures()['people']['declined']['inquiry_id'] . '" data-status="declined"', $html );
		$this->assertDoesNotMatchRegularExpression( '/class="kycb-row[^"]*" data-inquiry-id="[^"]+" data-status="(?!declined)/', $html );

		$_GET = array(
			'tab' => 'inquiries',
			's'   => self::fixtures()['people']['review']['email'],
		);
		$html = $this->output( array( Admin_Page::class, 'render' ) );
		$this->assertSame( 1, preg_match_all( '/<tr class="kycb-row/', $html ) );
	}

	public function test_person_view_shows_history_consents_jobs_and_actions() {
		wp_set_current_user( 1 );
		$person = self::fixtures()['people']['approved_investor'];
		$_GET   = array(
			'tab'   => 'person',
			'email' => $person['email'],
		);
		$html   = $this->output( array( Admin_Page::class, 'render' ) );
		$this->assertStringContainsString( 'data-inquiry-id="' . $person['inquiry_id'] . '"', $html );
		foreach ( array( 'inquiry.created', 'inquiry.completed', 'inquiry.approved' ) as $event ) {
			$this->assertStringContainsString( '<code>' . $event . '</code>', $html );
		}
		$this->assertStringContainsString( 'arrived by a Persona webhook', $html );  // no consent recorded
		$this->assertStringContainsString( '<code>crm.sync</code>', $html );
		$this->assertStringContainsString( '<code>n8n.event kyc.approved</code>', $html );
		foreach ( array( 'resend', 'resync', 'export', 'erase' ) as $action ) {
			$this->assertStringContainsString( 'kycb-action-form--' . $action, $html );
		}
		$this->assertStringContainsString( 'name="_wpnonce"', $html );

		$_GET['email'] = 'never-seen@example.test';
		$this->assertStringContainsString( 'holds no data for this email', $this->output( array( Admin_Page::class, 'render' ) ) );
	}

	public function test_bridge_down_shows_a_notice_not_an_error() {
		wp_set_current_user( 1 );
		$this->bridge_down();
		$html = $this->output( array( Admin_Page::class, 'render' ) );
		$this->assertStringContainsString( 'notice-error', $html );
		$this->assertStringContainsString( 'unreachable', $html );
	}

	public function test_users_screen_has_a_kyc_column() {
		wp_set_current_user( 1 );
		$columns = apply_filters( 'manage_users_columns', array() );
		$this->assertArrayHasKey( 'kycb_kyc', $columns );
		$approved = $this->user( self::fixtures()['people']['approved_investor']['email'] );
		$value    = apply_filters( 'manage_users_custom_column', '', 'kycb_kyc', $approved );
		$this->assertStringContainsString( 'kycb-status--approved', $value );
		$this->assertStringContainsString( 'enhanced', $value );

		$this->log_in( 'users-column-subscriber@example.test' );
		$this->assertArrayNotHasKey( 'kycb_kyc', apply_filters( 'manage_users_columns', array() ) );
	}

	public function test_users_screen_asks_the_bridge_once_for_all_its_rows() {
		wp_set_current_user( 1 );
		$people = self::fixtures()['people'];
		$ids    = array(
			$this->user( $people['approved_investor']['email'] ),
			$this->user( $people['declined']['email'] ),
			$this->user( 'users-batch-unknown@example.test' ),
		);
		$asked  = array();
		$count  = function ( $response, $context, $class, $args, $url ) use ( &$asked ) {
			unset( $response, $context, $class, $args );
			$asked[] = $url;
		};
		add_action( 'http_api_debug', $count, 10, 5 );
		try {
			$GLOBALS['wp_list_table'] = _get_list_table( 'WP_Users_List_Table', array( 'screen' => 'users' ) );
			$GLOBALS['wp_list_table']->prepare_items();
			$values = array();
			foreach ( $ids as $id ) {
				$values[ $id ] = apply_filters( 'manage_users_custom_column', '', 'kycb_kyc', $id );
			}
		} finally {
			remove_action( 'http_api_debug', $count, 10 );
			unset( $GLOBALS['wp_list_table'] );
		}
		$this->assertCount( 1, $asked, implode( "\n", $asked ) );
		$this->assertStringContainsString( '/api/v1/contacts/kyc?email=', $asked[0] );
		$this->assertStringContainsString( 'kycb-status--approved', $values[ $ids[0] ] );
		$this->assertStringContainsString( 'kycb-status--declined', $values[ $ids[1] ] );
		$this->assertStringContainsString( 'kycb-status--not_started', $values[ $ids[2] ] );
	}

	public function test_uninstall_removes_options_transients_and_capability() {
		$settings = get_option( Settings::OPTION );
		$token    = Settings::token();
		set_transient( 'kycb_kyc_test', array( 'status' => 'approved' ), 60 );
		try {
			if ( ! defined( 'WP_UNINSTALL_PLUGIN' ) ) {
				define( 'WP_UNINSTALL_PLUGIN', 'kyc-bridge/kyc-bridge.php' );
			}
			include WP_PLUGIN_DIR . '/kyc-bridge/uninstall.php';
			$this->assertFalse( get_option( Settings::OPTION ) );
			$this->assertFalse( get_option( Settings::TOKEN_OPTION ) );
			$this->assertFalse( get_transient( 'kycb_kyc_test' ) );
			$this->assertFalse( get_role( 'administrator' )->has_cap( Lifecycle::CAPABILITY ) );
			$this->assertFalse( get_role( 'administrator' )->has_cap( Lifecycle::MANAGE_CAPABILITY ) );
			$this->assertFalse( get_option( Lifecycle::VERSION_OPTION ) );
		} finally {
			Lifecycle::activate();
			update_option( Settings::OPTION, $settings );
			Settings::set_token( $token );
		}
		$this->assertTrue( get_role( 'administrator' )->has_cap( Lifecycle::CAPABILITY ) );
	}
}
